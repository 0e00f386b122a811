"""Multipart file parts and raw bodies go straight to staging: one copy, refused uploads cut
at the limit, and nothing left in staging whatever way the request ends."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dicom.models import Instance
from dicom.storage import blob_reader
from dicom.tests.factories import ct_variant

pytestmark = pytest.mark.django_db
UPLOAD_URL = "/viewer/api/upload/"


def post(client, field: str, *files: tuple[str, bytes]):
    parts = [SimpleUploadedFile(name, data) for name, data in files]
    return client.post(UPLOAD_URL, {field: parts}, format="multipart")


def staging_files(root) -> list:
    staging = root / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


def test_the_stored_original_is_the_uploaded_bytes_and_staging_is_left_empty(
    owner_client, isolated_storage
):
    data = ct_variant()
    response = post(owner_client, "files", ("ct.dcm", data))
    assert response.status_code == 201, response.content[:300]
    instance = Instance.objects.get()
    assert instance.sha256 == hashlib.sha256(data).hexdigest()
    assert instance.file_size == len(data)
    with blob_reader(instance.file_path) as fh:
        assert fh.read() == data
    assert staging_files(isolated_storage) == []


def test_an_upload_over_the_limit_stops_there_and_leaves_nothing(
    owner_client, isolated_storage, settings
):
    small, big = ct_variant(), ct_variant(Rows=64, Columns=64) + bytes(400_000)
    settings.LIGHTBOX_MAX_UPLOAD_BYTES = len(small) + 1000
    response = post(owner_client, "files", ("ok.dcm", small), ("big.dcm", big))
    assert response.status_code == 400
    assert response.json()["code"] == "upload_too_large"
    assert Instance.objects.count() == 0
    assert staging_files(isolated_storage) == []


def test_a_file_over_the_file_limit_is_refused_after_staging_and_removed(
    owner_client, isolated_storage, settings
):
    settings.LIGHTBOX_MAX_FILE_BYTES = 1000  # checked after staging, for each file
    response = post(owner_client, "files", ("a.dcm", ct_variant()))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert staging_files(isolated_storage) == []


def test_parts_the_view_never_reads_are_removed_when_the_request_ends(
    owner_client, isolated_storage
):
    response = post(owner_client, "other", ("a.dcm", ct_variant()))
    assert response.status_code == 400
    assert response.json()["code"] == "no_files"
    assert staging_files(isolated_storage) == []


def test_a_body_broken_after_a_complete_part_is_refused_and_leaves_no_staged_file(
    owner_client, isolated_storage
):
    boundary = "lightbox-test-boundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="ok.dcm"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    body += (
        ct_variant()
        + (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="files"; filename="broken.dcm"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            "!!!! not base64 !!!!\r\n"
            f"--{boundary}--\r\n"
        ).encode()
    )
    response = owner_client.generic(
        "POST", UPLOAD_URL, body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert Instance.objects.count() == 0
    assert staging_files(isolated_storage) == []


# --- one file as the raw body -------------------------------------------------------------


def post_body(client, data: bytes, content_type: str = "application/dicom", **extra):
    return client.generic("POST", UPLOAD_URL, data, content_type=content_type, **extra)


def test_a_raw_dicom_body_is_stored_byte_for_byte_and_answers_like_a_form_upload(
    owner_client, isolated_storage
):
    data = ct_variant()
    response = post_body(owner_client, data, HTTP_X_FILE_NAME="ct.dcm")
    assert response.status_code == 201, response.content[:300]
    instance = Instance.objects.get()
    assert response.json()["uploaded_files"] == [
        {
            "filename": "ct.dcm",
            "status": "stored",
            "study_id": instance.series.study_id,
            "series_id": instance.series_id,
            "image_id": instance.pk,
            "sop_instance_uid": instance.sop_instance_uid,
        }
    ]
    assert instance.sha256 == hashlib.sha256(data).hexdigest()
    with blob_reader(instance.file_path) as fh:
        assert fh.read() == data
    assert staging_files(isolated_storage) == []
    again = post_body(owner_client, data)
    assert again.status_code == 200
    assert again.json()["uploaded_files"][0]["status"] == "duplicate"
    assert again.json()["uploaded_files"][0]["filename"] == "upload"


def test_a_raw_zip_body_is_expanded(owner_client, isolated_storage):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.dcm", ct_variant())
        archive.writestr("b.dcm", ct_variant())
    response = post_body(owner_client, buffer.getvalue(), "application/zip")
    assert response.status_code == 201, response.content[:300]
    assert Instance.objects.count() == 2
    assert staging_files(isolated_storage) == []


def test_a_raw_body_over_the_upload_limit_is_cut_there_and_leaves_nothing(
    owner_client, isolated_storage, settings
):
    settings.LIGHTBOX_MAX_UPLOAD_BYTES = 10_000
    response = post_body(owner_client, ct_variant() + bytes(20_000), "application/octet-stream")
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert Instance.objects.count() == 0
    assert staging_files(isolated_storage) == []


def test_a_raw_body_conflict_is_409_unless_overwrite_is_asked_in_the_query(owner_client):
    sop = pydicom.uid.generate_uid()
    assert post_body(owner_client, ct_variant(sop_uid=sop)).status_code == 201
    other = ct_variant(sop_uid=sop)
    assert post_body(owner_client, other).status_code == 409
    replaced = owner_client.generic(
        "POST", f"{UPLOAD_URL}?overwrite=true", other, content_type="application/dicom"
    )
    assert replaced.status_code == 201
    assert Instance.objects.get().sha256 == hashlib.sha256(other).hexdigest()


def test_a_raw_body_of_another_media_type_is_415_and_stores_nothing(owner_client, isolated_storage):
    response = post_body(owner_client, ct_variant(), "text/plain")
    assert response.status_code == 415
    assert "text/plain" in response.json()["error"]
    assert Instance.objects.count() == 0
    assert staging_files(isolated_storage) == []


def test_a_raw_body_needs_authentication(client, isolated_storage):
    response = post_body(client, ct_variant())
    assert response.status_code in (401, 403)
    assert Instance.objects.count() == 0
    assert staging_files(isolated_storage) == []
