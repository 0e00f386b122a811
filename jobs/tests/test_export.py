from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest

from dicom import rendering
from dicom.ingest import instance_ingest
from dicom.previews import instance_source
from dicom.tests.factories import ct_small_path, ct_variant, mr_small_path
from jobs.tests.helpers import worker_drain

pytestmark = pytest.mark.django_db

URL = "/viewer/api/export/images/"


def stored(owner, data: bytes):
    return instance_ingest(stream=io.BytesIO(data), owner=owner, source="test").instance


def zip_of(response) -> zipfile.ZipFile:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if hasattr(response, "getvalue") and not body:
        body = response.getvalue()
    return zipfile.ZipFile(io.BytesIO(body))


def test_a_small_png_export_streams_a_zip_with_metadata_and_an_index(owner, owner_client):
    ct = stored(owner, ct_small_path().read_bytes())
    mr = stored(owner, mr_small_path().read_bytes())
    response = owner_client.post(
        URL,
        {"image_ids": [ct.pk, mr.pk], "format": "png", "include_metadata": True},
        format="json",
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zip_of(response)
    names = set(archive.namelist())
    assert {f"images/image-{ct.pk}.png", f"images/image-{mr.pk}.png", "index.csv"} <= names
    assert archive.read(f"images/image-{ct.pk}.png").startswith(b"\x89PNG")
    meta = json.loads(archive.read(f"metadata/image-{ct.pk}.json"))
    assert meta["sop_instance_uid"] == ct.sop_instance_uid and meta["modality"] == "CT"
    assert "patient_name" not in meta
    rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
    assert [r["image_id"] for r in rows] == [str(ct.pk), str(mr.pk)]
    assert "errors.json" not in names


def test_an_npy_export_holds_the_modality_values_of_the_one_renderer(owner, owner_client):
    ct = stored(owner, ct_small_path().read_bytes())
    response = owner_client.post(URL, {"image_ids": [ct.pk], "format": "npy"}, format="json")
    array = np.load(io.BytesIO(zip_of(response).read(f"images/image-{ct.pk}.npy")))
    with instance_source(ct) as source:
        expected = rendering.frame_pixels(source=source, frame=0)
    assert np.array_equal(array, expected)


def test_exporting_an_image_of_another_user_is_not_found(owner, outsider_client, owner_client):
    ct = stored(owner, ct_variant())
    assert outsider_client.post(URL, {"image_ids": [ct.pk]}, format="json").status_code == 404
    bad = owner_client.post(URL, {"image_ids": [ct.pk], "format": "tiff"}, format="json")
    empty = owner_client.post(URL, {"image_ids": []}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_format"
    assert empty.status_code == 400 and empty.json()["code"] == "bad_image_ids"


def test_a_large_export_becomes_a_job_with_a_downloadable_result(
    owner, owner_client, outsider_client, settings, django_capture_on_commit_callbacks
):
    settings.LIGHTBOX_EXPORT_SYNC_MAX_IMAGES = 2
    images = [stored(owner, ct_variant()) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            URL,
            {"image_ids": [i.pk for i in images], "format": "jpeg", "include_metadata": True},
            format="json",
        )
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert owner_client.get(f"/jobs/{job_id}/result/").status_code == 409
    worker_drain()
    status = owner_client.get(f"/jobs/{job_id}/").json()
    assert (status["status"], status["processed"], status["percentage"]) == ("completed", 3, 100.0)
    assert outsider_client.get(f"/jobs/{job_id}/").status_code == 404
    assert outsider_client.get(f"/jobs/{job_id}/result/").status_code == 404
    archive = zip_of(owner_client.get(f"/jobs/{job_id}/result/"))
    names = set(archive.namelist())
    assert {f"images/image-{i.pk}.jpg" for i in images} <= names
    assert archive.read(f"images/image-{images[0].pk}.jpg").startswith(b"\xff\xd8")
    assert {f"metadata/image-{i.pk}.json" for i in images} <= names and "index.csv" in names
