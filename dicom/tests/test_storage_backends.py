"""The ingest/retrieve flows on S3-compatible object storage (a real moto server started by
the tests) and with encryption at rest, which every reader must not notice."""

from __future__ import annotations

import base64
import io
import os
import uuid

import boto3
import pydicom
import pytest
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils.functional import empty
from PIL import Image

from dicom import encryption
from dicom.models import Instance
from dicom.tests.factories import ct_small_path, ct_variant
from dicom.tests.server import moto_start

pytestmark = pytest.mark.django_db
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


@pytest.fixture(scope="module")
def s3_server():
    url, process = moto_start()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_server, settings, monkeypatch):
    bucket = f"lightbox-{uuid.uuid4().hex[:12]}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server,
                "region_name": "us-east-1",
                "file_overwrite": True,
                "querystring_auth": False,
            },
        },
    }
    storages._storages = {}
    default_storage._wrapped = empty
    yield client, bucket
    storages._storages = {}
    default_storage._wrapped = empty


def bucket_keys(client, bucket) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def upload(client, data: bytes, **extra):
    return client.post(
        "/viewer/api/upload/",
        {"files": SimpleUploadedFile("x.dcm", data), **extra},
        format="multipart",
    )


# --- S3 -----------------------------------------------------------------------------------


def test_on_s3_an_upload_is_stored_rendered_and_downloaded(owner_client, s3_bucket):
    client, bucket = s3_bucket
    data = ct_small_path().read_bytes()
    body = upload(owner_client, data).json()
    image_id = body["uploaded_files"][0]["image_id"]
    instance = Instance.objects.get()
    assert bucket_keys(client, bucket) == [instance.file_path]
    stored = client.get_object(Bucket=bucket, Key=instance.file_path)["Body"].read()
    assert stored == data
    preview = owner_client.get(f"/viewer/api/images/{image_id}/preview/")
    assert Image.open(io.BytesIO(preview.content)).size == (128, 128)
    assert len(bucket_keys(client, bucket)) == 2  # the cached render beside the original
    download = owner_client.get(f"/viewer/api/images/{image_id}/file/")
    assert b"".join(download.streaming_content) == data


def test_on_s3_resends_and_conflicts_behave_as_on_disk(owner_client, s3_bucket):
    client, bucket = s3_bucket
    sop = pydicom.uid.generate_uid()
    first = ct_variant(sop_uid=sop)
    assert upload(owner_client, first).status_code == 201
    assert upload(owner_client, first).json()["uploaded_files"][0]["status"] == "duplicate"
    assert upload(owner_client, ct_variant(sop_uid=sop)).status_code == 409
    assert len(bucket_keys(client, bucket)) == 1


def test_on_s3_a_hostile_upload_leaves_the_bucket_empty(owner_client, s3_bucket):
    client, bucket = s3_bucket
    assert upload(owner_client, ct_variant(Rows=60000, Columns=60000)).status_code == 400
    assert upload(owner_client, b"\x00" * 500).status_code == 400
    assert bucket_keys(client, bucket) == []


def test_on_s3_delete_and_verify_storage_work(
    owner_client, s3_bucket, django_capture_on_commit_callbacks
):
    client, bucket = s3_bucket
    study_id = upload(owner_client, ct_variant()).json()["study_id"]
    upload(owner_client, ct_variant())
    out = io.StringIO()
    call_command("verify_storage", stdout=out)
    assert "checked 2 instance(s): 0 missing, 0 corrupt, 0 orphan(s)" in out.getvalue()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.delete(f"/viewer/api/studies/{study_id}/")
    assert bucket_keys(client, bucket) == [Instance.objects.get().file_path]


# --- encryption at rest ---------------------------------------------------------------------


@pytest.fixture
def encrypted(settings):
    settings.LIGHTBOX_ENCRYPTION_KEYS = f"k1:{KEY_A}"
    settings.LIGHTBOX_ENCRYPTION_KEY_ID = "k1"
    return settings


def test_encrypted_files_are_unreadable_at_rest_and_transparent_to_readers(
    owner_client, encrypted, isolated_storage
):
    data = ct_small_path().read_bytes()
    image_id = upload(owner_client, data).json()["uploaded_files"][0]["image_id"]
    instance = Instance.objects.get()
    at_rest = (isolated_storage / "media" / instance.file_path).read_bytes()
    assert at_rest.startswith(encryption.MAGIC + b"\x02k1")
    assert b"CompressedSamples" not in at_rest and data[128:] not in at_rest
    download = owner_client.get(f"/viewer/api/images/{image_id}/file/")
    assert b"".join(download.streaming_content) == data
    header = owner_client.get(f"/viewer/api/images/{image_id}/header/", {"tag": "PatientID"})
    assert header.status_code == 200
    preview = owner_client.get(f"/viewer/api/images/{image_id}/preview/", {"size": 64})
    assert Image.open(io.BytesIO(preview.content)).size == (64, 64)
    again = owner_client.get(f"/viewer/api/images/{image_id}/preview/", {"size": 64})
    assert again.content == preview.content  # served from the encrypted cache
    cached = isolated_storage / "media" / "final" / instance.sha256 / "render-f0-64x64.png"
    assert cached.read_bytes().startswith(encryption.MAGIC)


def test_a_tampered_encrypted_file_is_reported_corrupt(owner_client, encrypted, isolated_storage):
    upload(owner_client, ct_variant())
    path = isolated_storage / "media" / Instance.objects.get().file_path
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_storage", stdout=out)
    assert "corrupt" in out.getvalue()


def test_keys_rotate_while_old_files_stay_readable(owner_client, encrypted, isolated_storage):
    old_bytes = ct_variant()
    old_id = upload(owner_client, old_bytes).json()["uploaded_files"][0]["image_id"]
    encrypted.LIGHTBOX_ENCRYPTION_KEYS = f"k1:{KEY_A},k2:{KEY_B}"
    encrypted.LIGHTBOX_ENCRYPTION_KEY_ID = "k2"
    new_id = upload(owner_client, ct_variant()).json()["uploaded_files"][0]["image_id"]
    new_path = isolated_storage / "media" / Instance.objects.get(pk=new_id).file_path
    assert new_path.read_bytes().startswith(encryption.MAGIC + b"\x02k2")
    download = owner_client.get(f"/viewer/api/images/{old_id}/file/")
    assert b"".join(download.streaming_content) == old_bytes


def test_a_truncated_encrypted_stream_fails_instead_of_returning_short_data(encrypted):
    sealed = io.BytesIO()
    plain = os.urandom(3 * encryption.CHUNK + 100)
    encryption.encrypt_stream(io.BytesIO(plain), sealed)
    whole = sealed.getvalue()
    assert encryption.decrypted_copy(io.BytesIO(whole)).read() == plain
    cut = whole[: len(whole) - (encryption.CHUNK + encryption.NONCE + encryption.TAG)]
    with pytest.raises(encryption.EncryptionError):
        encryption.decrypted_copy(io.BytesIO(cut))
