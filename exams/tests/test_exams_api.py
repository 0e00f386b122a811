"""Seed 002's flows: upload a DICOM file, register its image under an exam, read it back."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from exams.models import ExamImage

pytestmark = pytest.mark.django_db

EXAM_ID = "c627b932-4370-4123-bad4-a81be00dad8d"


def seed_payload(**overrides):
    payload = {
        "examenID": EXAM_ID,
        "studyInstanceUID": "1.2.840.113619.2.15.1008000062035011254.825190719.2.31",
        "seriesInstanceUID": "1.2.840.113619.2.15.1008000062035011254.825190719.1.31",
        "sopInstanceUID": "1.2.840.113619.2.15.1008000062035011254.825190719.0.31.2.1",
        "dateAcquisition": "1996-03-08T00:00:00.000Z",
        "modalite": "CT",
        "description": "Chest CT scan",
        "url": "/dicom/wado/1.2.840.113619.2.15.1008000062035011254.825190719.0.31.2.1",
    }
    payload.update(overrides)
    return payload


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def ct_upload(name: str = "CT_small.dcm") -> SimpleUploadedFile:
    with open(get_testdata_file(name), "rb") as fh:
        return SimpleUploadedFile(name, fh.read(), content_type="application/dicom")


def test_the_seed_flow_uploads_registers_and_reads_back_with_a_bearer_token(owner):
    client = bearer_client(owner)
    upload = client.post("/dicom/upload", {"file": ct_upload()}, format="multipart")
    assert upload.status_code == 201, upload.json()
    data = upload.json()["data"]
    assert upload.json()["success"] is True
    assert set(data) >= {"ID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}
    assert data["MainDicomTags"]["Modality"] == "CT"
    assert "ImageComments" in data["MainDicomTags"]

    payload = seed_payload(
        studyInstanceUID=data["StudyInstanceUID"],
        seriesInstanceUID=data["SeriesInstanceUID"],
        sopInstanceUID=data["SOPInstanceUID"],
    )
    created = client.post("/examens-medicaux/images", payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert uuid.UUID(body["imageID"])
    assert {k: v for k, v in body.items() if k != "imageID"} == payload
    assert ExamImage.objects.get(pk=body["imageID"]).instance_id == int(data["ID"])

    listed = client.get(f"/examens-medicaux/{EXAM_ID}/images")
    assert listed.status_code == 200
    assert [i["imageID"] for i in listed.json()] == [body["imageID"]]
    single = client.get(f"/examens-medicaux/images/{body['imageID']}")
    assert single.status_code == 200 and single.json() == body


def test_the_same_file_uploaded_twice_is_a_success_that_stores_nothing_new(owner_client):
    first = owner_client.post("/dicom/upload", {"file": ct_upload()}, format="multipart")
    again = owner_client.post("/dicom/upload", {"file": ct_upload()}, format="multipart")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["data"]["ID"] == again.json()["data"]["ID"]


def test_an_upload_without_a_file_fails_in_the_seed_shape(owner_client):
    response = owner_client.post("/dicom/upload", {}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "message": "Validation failed",
        "error": "Bad Request",
        "details": ["file is required"],
    }


def test_a_file_that_is_not_dicom_is_refused_in_the_seed_shape(owner_client):
    junk = SimpleUploadedFile("x.dcm", b"not a dicom file at all" * 10)
    response = owner_client.post("/dicom/upload", {"file": junk}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400 and body["error"] == "Bad Request"
    assert body["code"] == "invalid_dicom"


def test_validation_errors_list_every_problem_in_the_seed_shape(owner_client):
    payload = seed_payload(examenID="not-a-uuid")
    del payload["modalite"]
    response = owner_client.post("/examens-medicaux/images", payload, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "message": "Validation failed",
        "error": "Bad Request",
        "details": ["examenID must be a valid UUID", "modalite is required"],
    }


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"sopInstanceUID": "1.2.abc"}, "sopInstanceUID must be a valid DICOM UID"),
        ({"dateAcquisition": "yesterday"}, "dateAcquisition must be a valid ISO 8601"),
        ({"description": 42}, "description must be a string"),
        ({"url": 7}, "url must be a string"),
        ({"patientName": "Doe"}, "property patientName should not exist"),
        ({"modalite": "X" * 17}, "modalite must be shorter than or equal to 16"),
    ],
)
def test_each_invalid_field_is_named_in_details(owner_client, overrides, detail):
    response = owner_client.post(
        "/examens-medicaux/images", seed_payload(**overrides), format="json"
    )
    assert response.status_code == 400
    assert any(d.startswith(detail) for d in response.json()["details"]), response.json()


def test_a_body_that_is_not_json_is_a_validation_error(owner_client):
    response = owner_client.post(
        "/examens-medicaux/images", data="{oops", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["details"] == ["the request body must be valid JSON"]


def test_a_date_without_time_is_accepted_and_written_back_in_iso_utc(owner_client):
    response = owner_client.post(
        "/examens-medicaux/images", seed_payload(dateAcquisition="1996-03-08"), format="json"
    )
    assert response.status_code == 201
    assert response.json()["dateAcquisition"] == "1996-03-08T00:00:00.000Z"


def test_registering_the_same_sop_instance_twice_is_a_conflict(owner_client):
    assert (
        owner_client.post("/examens-medicaux/images", seed_payload(), format="json").status_code
        == 201
    )
    again = owner_client.post("/examens-medicaux/images", seed_payload(), format="json")
    assert again.status_code == 409
    body = again.json()
    assert body["statusCode"] == 409 and body["error"] == "Conflict"


def test_a_url_may_be_null_or_absent(owner_client):
    payload = seed_payload(url=None)
    response = owner_client.post("/examens-medicaux/images", payload, format="json")
    assert response.status_code == 201 and response.json()["url"] is None


def test_another_user_sees_neither_the_exam_nor_the_image(owner_client, outsider_client):
    image_id = owner_client.post("/examens-medicaux/images", seed_payload(), format="json").json()[
        "imageID"
    ]
    exam = outsider_client.get(f"/examens-medicaux/{EXAM_ID}/images")
    image = outsider_client.get(f"/examens-medicaux/images/{image_id}")
    assert exam.status_code == 404 and exam.json()["statusCode"] == 404
    assert image.status_code == 404


def test_a_colleague_sees_images_linked_to_a_study_shared_with_their_group(
    owner, owner_client, colleague
):
    from django.contrib.auth.models import Group

    data = owner_client.post("/dicom/upload", {"file": ct_upload()}, format="multipart").json()
    owner_client.post(
        "/examens-medicaux/images",
        seed_payload(sopInstanceUID=data["data"]["SOPInstanceUID"]),
        format="json",
    )
    from dicom.models import Study

    Study.objects.get(study_instance_uid=data["data"]["StudyInstanceUID"]).shared_with.add(
        Group.objects.get(name="radiology")
    )
    client = APIClient()
    client.force_authenticate(colleague)
    assert len(client.get(f"/examens-medicaux/{EXAM_ID}/images").json()) == 1


def test_an_exam_id_that_is_not_a_uuid_is_a_validation_error(owner_client):
    response = owner_client.get("/examens-medicaux/nope/images")
    assert response.status_code == 400
    assert response.json()["details"] == ["id must be a valid UUID"]


def test_every_exam_endpoint_requires_authentication():
    client = APIClient()
    assert client.post("/examens-medicaux/images", seed_payload(), format="json").status_code == 401
    assert client.get(f"/examens-medicaux/{EXAM_ID}/images").status_code == 401
    assert client.post("/dicom/upload", {}, format="multipart").status_code == 401
