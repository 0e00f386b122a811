from __future__ import annotations

import base64
import io
import zipfile

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from dicom.models import Instance, Study
from dicom.tests.factories import ct_small_path, ct_variant, mr_small_path

pytestmark = pytest.mark.django_db
UPLOAD_URL = "/viewer/api/upload/"


def upload(client, *files: tuple[str, bytes], **extra):
    payload = {"files": [SimpleUploadedFile(name, data) for name, data in files], **extra}
    return client.post(UPLOAD_URL, payload, format="multipart")


def test_upload_answers_in_the_seed_shape(owner_client):
    response = upload(owner_client, ("CT_small.dcm", ct_small_path().read_bytes()))
    assert response.status_code == 201
    body = response.json()
    instance = Instance.objects.get()
    assert body["success"] is True
    assert body["study_id"] == instance.series.study_id
    assert body["uploaded_files"][0] == {
        "filename": "CT_small.dcm",
        "status": "stored",
        "study_id": instance.series.study_id,
        "series_id": instance.series_id,
        "image_id": instance.pk,
        "sop_instance_uid": instance.sop_instance_uid,
    }
    assert body["errors"] == []


def test_upload_requires_authentication(client):
    response = client.post(UPLOAD_URL, {"files": SimpleUploadedFile("a.dcm", b"x")})
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_many_files_with_one_bad_one_report_per_file_errors(owner_client):
    response = upload(
        owner_client,
        ("a.dcm", ct_variant()),
        ("b.dcm", ct_variant()),
        ("notes.txt", b"hello"),
    )
    assert response.status_code == 201
    body = response.json()
    assert len(body["uploaded_files"]) == 2
    assert [e["filename"] for e in body["errors"]] == ["notes.txt"]
    assert body["errors"][0]["code"] == "invalid_dicom"


def test_a_resend_is_a_success_that_stores_nothing_new(owner_client):
    data = ct_variant()
    upload(owner_client, ("a.dcm", data))
    response = upload(owner_client, ("a.dcm", data))
    assert response.status_code == 200
    assert response.json()["uploaded_files"][0]["status"] == "duplicate"
    assert Instance.objects.count() == 1


def test_the_same_uid_with_other_bytes_is_409_unless_overwrite(owner_client):
    sop = pydicom.uid.generate_uid()
    upload(owner_client, ("a.dcm", ct_variant(sop_uid=sop)))
    other = ct_variant(sop_uid=sop)
    conflict = upload(owner_client, ("a.dcm", other))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "duplicate_instance_conflict"
    replaced = upload(owner_client, ("a.dcm", other), overwrite="true")
    assert replaced.status_code == 201
    assert replaced.json()["uploaded_files"][0]["status"] == "overwritten"


def test_a_zip_of_a_folder_is_expanded(owner_client):
    study = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(3):
            archive.writestr(f"study/series/{n}.dcm", ct_variant(study_uid=study))
        archive.writestr("study/", b"")
        archive.writestr("__MACOSX/._0.dcm", b"junk")
    response = upload(owner_client, ("study.zip", buffer.getvalue()))
    assert response.status_code == 201
    body = response.json()
    assert len(body["uploaded_files"]) == 3
    assert body["uploaded_files"][0]["filename"] == "study.zip/study/series/0.dcm"
    assert Study.objects.get().study_instance_uid == study


def test_import_command_reports_stored_duplicate_and_rejected(owner, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.dcm").write_bytes(ct_variant())
    (folder / "sub" / "b").write_bytes(mr_small_path().read_bytes())
    (folder / "junk.dcm").write_bytes(b"not dicom")
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as archive:
        archive.writestr("a.dcm", (folder / "a.dcm").read_bytes())
    out = io.StringIO()
    call_command(
        "import_dicom",
        str(folder),
        str(tmp_path / "c.zip"),
        owner=owner.email,
        no_progress=True,
        stdout=out,
    )
    assert "stored 2, duplicate 1, rejected 1" in out.getvalue()
    assert Study.objects.filter(owner=owner).count() == 2


def test_a_jpeg_is_not_accepted_as_dicom_by_this_route(owner_client):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    response = upload(owner_client, ("photo.jpg", buffer.getvalue()))
    assert response.status_code == 400


def test_header_bytes_are_never_returned_as_raw_binary(owner_client):
    upload(owner_client, ("ct.dcm", ct_small_path().read_bytes()))
    image = Instance.objects.get()
    response = owner_client.get(f"/viewer/api/images/{image.pk}/")
    body = response.json()
    for element in body["header"].values():
        if "InlineBinary" in element:
            assert len(base64.b64decode(element["InlineBinary"])) <= 1024
