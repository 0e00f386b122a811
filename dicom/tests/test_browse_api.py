from __future__ import annotations

import base64
import io

import numpy as np
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from dicom.models import Instance
from dicom.tests.factories import ct_small_path, ct_variant

pytestmark = pytest.mark.django_db


def upload(client, data: bytes, name: str = "x.dcm") -> dict:
    response = client.post(
        "/viewer/api/upload/", {"files": SimpleUploadedFile(name, data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["uploaded_files"][0]


@pytest.fixture
def three_studies(owner_client):
    upload(
        owner_client,
        ct_variant(
            PatientName="SMITH^JOHN",
            PatientID="P1",
            StudyDate="20180105",
            AccessionNumber="ACC1",
            StudyDescription="CHEST CT",
        ),
    )
    upload(
        owner_client,
        ct_variant(
            PatientName="SMYTHE^ANNA",
            PatientID="P2",
            StudyDate="20190610",
            AccessionNumber="ACC2",
            StudyDescription="HEAD",
        ),
    )
    upload(
        owner_client,
        ct_variant(
            PatientName="JONES^MARY",
            PatientID="P3",
            StudyDate="20200301",
            AccessionNumber="ACC3",
            Modality="MR",
            StudyDescription="KNEE MRI",
        ),
    )


def names(response) -> list[str]:
    return sorted(s["patient_name"] for s in response.json())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["JONES^MARY", "SMITH^JOHN", "SMYTHE^ANNA"]),
        ({"patient_name": "SM*"}, ["SMITH^JOHN", "SMYTHE^ANNA"]),
        ({"patient_name": "smi?h*"}, ["SMITH^JOHN"]),
        ({"patient_name": "anna"}, ["SMYTHE^ANNA"]),
        ({"patient_id": "P2"}, ["SMYTHE^ANNA"]),
        ({"date_from": "2019-01-01"}, ["JONES^MARY", "SMYTHE^ANNA"]),
        ({"date_from": "2018-01-01", "date_to": "2019-12-31"}, ["SMITH^JOHN", "SMYTHE^ANNA"]),
        ({"modality": "MR"}, ["JONES^MARY"]),
        ({"accession_number": "ACC1"}, ["SMITH^JOHN"]),
        ({"description": "chest"}, ["SMITH^JOHN"]),
    ],
)
def test_studies_can_be_searched(owner_client, three_studies, params, expected):
    response = owner_client.get("/viewer/api/studies/", params)
    assert response.status_code == 200
    assert names(response) == expected


def test_studies_are_paged_and_sorted(owner_client, three_studies):
    response = owner_client.get(
        "/viewer/api/studies/", {"ordering": "patient_name", "page": 2, "page_size": 2}
    )
    assert response["X-Total-Count"] == "3"
    assert [s["patient_name"] for s in response.json()] == ["SMYTHE^ANNA"]


def test_the_study_list_counts_series_and_images_in_constant_queries(owner_client, three_studies):
    with CaptureQueriesContext(connection) as queries:
        response = owner_client.get("/viewer/api/studies/")
    row = response.json()[0]
    assert row["series_count"] == 1
    assert row["total_images"] == 1
    assert len(queries) <= 4


def test_a_bad_date_is_a_400(owner_client):
    response = owner_client.get("/viewer/api/studies/", {"date_from": "yesterday"})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_date"


def test_study_images_answer_in_the_seed_shape(owner_client):
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for n in (2, 1):
        uploaded = upload(
            owner_client, ct_variant(study_uid=study, series_uid=series, instance_number=n)
        )
    response = owner_client.get(f"/viewer/api/studies/{uploaded['study_id']}/images/")
    body = response.json()
    assert body["study"]["id"] == uploaded["study_id"]
    assert [i["instance_number"] for i in body["images"]] == [1, 2]
    image = body["images"][0]
    ds = pydicom.dcmread(ct_small_path(), stop_before_pixels=True)
    assert image["rescale_intercept"] == float(ds.RescaleIntercept)
    assert image["pixel_spacing"] == [float(v) for v in ds.PixelSpacing]


def test_image_data_is_a_png_data_url_with_metadata(owner_client):
    uploaded = upload(owner_client, ct_small_path().read_bytes())
    response = owner_client.get(f"/viewer/api/images/{uploaded['image_id']}/data/")
    body = response.json()
    assert body["image_data"].startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(body["image_data"].split(",", 1)[1])))
    assert png.size == (128, 128)
    assert body["metadata"]["pixel_spacing"] == [0.661468, 0.661468]


def test_the_requested_window_changes_the_rendered_image(owner_client):
    image_id = upload(owner_client, ct_small_path().read_bytes())["image_id"]
    url = f"/viewer/api/images/{image_id}/preview/"
    narrow = np.asarray(
        Image.open(
            io.BytesIO(owner_client.get(url, {"window_center": 40, "window_width": 80}).content)
        )
    )
    wide = np.asarray(
        Image.open(
            io.BytesIO(owner_client.get(url, {"window_center": 40, "window_width": 2000}).content)
        )
    )
    assert narrow.std() > wide.std()


def test_preview_is_a_png_and_is_cached_beside_the_original(owner_client, isolated_storage):
    uploaded = upload(owner_client, ct_small_path().read_bytes())
    response = owner_client.get(
        f"/viewer/api/images/{uploaded['image_id']}/preview/", {"size": "64"}
    )
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    instance = Instance.objects.get()
    cached = list((isolated_storage / "media" / "final" / instance.sha256).glob("render-*"))
    assert [p.name for p in cached] == ["render-f0-64x64.png"]


@pytest.mark.parametrize("tag", ["PatientName", "(0010,0010)", "00100010"])
def test_header_answers_one_tag_by_keyword_or_number(owner_client, tag):
    uploaded = upload(owner_client, ct_small_path().read_bytes())
    response = owner_client.get(f"/viewer/api/images/{uploaded['image_id']}/header/", {"tag": tag})
    assert response.json() == {"tag": "PatientName", "value": "CompressedSamples^CT1"}


def test_header_answers_404_for_an_absent_tag_and_400_for_an_unknown_one(owner_client):
    image_id = upload(owner_client, ct_small_path().read_bytes())["image_id"]
    url = f"/viewer/api/images/{image_id}/header/"
    assert owner_client.get(url, {"tag": "PatientMotherBirthName"}).status_code == 404
    assert owner_client.get(url, {"tag": "NoSuchKeyword"}).status_code == 400


def test_the_original_file_is_streamed_byte_identical(owner_client):
    data = ct_small_path().read_bytes()
    image_id = upload(owner_client, data)["image_id"]
    response = owner_client.get(f"/viewer/api/images/{image_id}/file/")
    assert response["Content-Type"] == "application/dicom"
    assert b"".join(response.streaming_content) == data


def test_an_undecodable_image_still_ingests_and_its_render_answers_422(owner_client):
    ds = pydicom.dcmread(ct_small_path())
    ds.BitsAllocated = 12  # not a valid native allocation: pixels cannot be decoded
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    image_id = upload(owner_client, buffer.getvalue())["image_id"]
    response = owner_client.get(f"/viewer/api/images/{image_id}/preview/")
    assert response.status_code == 422
    assert response.json()["code"] == "pixel_data_undecodable"


ROUTES = [
    "/viewer/api/studies/{study}/",
    "/viewer/api/studies/{study}/images/",
    "/viewer/api/studies/{study}/series/",
    "/viewer/api/series/{series}/images/",
    "/viewer/api/images/{image}/",
    "/viewer/api/images/{image}/data/",
    "/viewer/api/images/{image}/preview/",
    "/viewer/api/images/{image}/header/?tag=PatientName",
    "/viewer/api/images/{image}/file/",
]


def test_another_user_cannot_see_render_or_download_a_study(owner_client, outsider_client):
    uploaded = upload(owner_client, ct_small_path().read_bytes())
    ids = {
        "study": uploaded["study_id"],
        "series": uploaded["series_id"],
        "image": uploaded["image_id"],
    }
    assert outsider_client.get("/viewer/api/studies/").json() == []
    for route in ROUTES:
        response = outsider_client.get(route.format(**ids))
        assert response.status_code == 404, route
        assert b"CompressedSamples" not in response.content


def test_staff_and_group_members_see_shared_studies(owner_client, colleague, staff):
    from rest_framework.test import APIClient

    uploaded = upload(owner_client, ct_small_path().read_bytes())
    colleague_client, staff_client = APIClient(), APIClient()
    colleague_client.force_authenticate(colleague)
    staff_client.force_authenticate(staff)
    url = f"/viewer/api/studies/{uploaded['study_id']}/"
    assert colleague_client.get(url).status_code == 404
    assert staff_client.get(url).status_code == 200
    from dicom.models import Study

    Study.objects.get().shared_with.add(colleague.groups.get())
    assert colleague_client.get(url).status_code == 200


def test_reads_and_stores_leave_an_audit_trail_without_patient_data(owner_client, owner):
    from developers.models import AuditEvent

    uploaded = upload(owner_client, ct_small_path().read_bytes())
    image = uploaded["image_id"]
    owner_client.get(f"/viewer/api/studies/{uploaded['study_id']}/images/")
    owner_client.get(f"/viewer/api/images/{image}/preview/")
    owner_client.get(f"/viewer/api/images/{image}/header/", {"tag": "PatientName"})
    owner_client.get(f"/viewer/api/images/{image}/file/")
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["store", "view", "render", "header", "download"]
    assert all(e.user_id == owner.pk for e in events)
    assert events[-1].instance_id == image
    assert "CompressedSamples" not in " ".join(str(vars(e)) for e in events)


def test_image_routes_honour_an_image_accept_header(owner_client):
    image_id = upload(owner_client, ct_small_path().read_bytes())["image_id"]
    preview = owner_client.get(f"/viewer/api/images/{image_id}/preview/", HTTP_ACCEPT="image/png")
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/png"
    original = owner_client.get(
        f"/viewer/api/images/{image_id}/file/", HTTP_ACCEPT="application/dicom"
    )
    assert original.status_code == 200
    missing = owner_client.get("/viewer/api/images/999999/preview/", HTTP_ACCEPT="image/png")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
