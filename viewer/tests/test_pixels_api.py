from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from viewer.tests.helpers import sample_path, upload

pytestmark = pytest.mark.django_db


def pixels(client, image_id, frame=0):
    response = client.get(f"/viewer/api/images/{image_id}/pixels/?frame={frame}")
    assert response.status_code == 200, response.content
    dtype = {"int16": "<i2", "float32": "<f4"}[response["X-Dtype"]]
    shape = (int(response["X-Rows"]), int(response["X-Columns"]))
    return response, np.frombuffer(response.content, dtype=dtype).reshape(shape)


def test_ct_pixels_come_back_as_hounsfield_int16(owner_client):
    path = sample_path("CT_small.dcm")
    image_id = upload(owner_client, path)["uploaded_files"][0]["image_id"]
    response, values = pixels(owner_client, image_id)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert response["X-Dtype"] == "int16"
    assert response["X-Samples"] == "1"
    np.testing.assert_array_equal(values, expected)
    assert float(response["X-Window-Width"]) > 0


def test_the_default_window_reproduces_the_server_render(owner_client):
    image_id = upload(owner_client, sample_path("MR_small.dcm"))["uploaded_files"][0]["image_id"]
    response, values = pixels(owner_client, image_id)
    center = float(response["X-Window-Center"])
    width = float(response["X-Window-Width"])
    assert response["X-Voi-Function"] in {"LINEAR", "LINEAR_EXACT"}
    if response["X-Voi-Function"] == "LINEAR":
        gray = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
    else:
        gray = np.clip((values - center) / width + 0.5, 0, 1) * 255
    png = owner_client.get(f"/viewer/api/images/{image_id}/preview/")
    rendered = np.asarray(Image.open(io.BytesIO(png.content)).convert("L"), dtype=np.float32)
    assert np.abs(np.rint(gray) - rendered).max() <= 1


def test_a_frame_out_of_range_is_a_400(owner_client):
    image_id = upload(owner_client, sample_path("CT_small.dcm"))["uploaded_files"][0]["image_id"]
    response = owner_client.get(f"/viewer/api/images/{image_id}/pixels/?frame=5")
    assert response.status_code == 400
    assert response.json()["code"] == "frame_out_of_range"


def test_colour_images_point_to_the_rendered_preview(owner_client):
    image_id = upload(owner_client, sample_path("SC_rgb_rle.dcm"))["uploaded_files"][0]["image_id"]
    response = owner_client.get(f"/viewer/api/images/{image_id}/pixels/")
    assert response.status_code == 415
    assert "preview" in response.json()["error"]


def test_another_users_pixels_answer_404(owner_client, outsider_client):
    image_id = upload(owner_client, sample_path("CT_small.dcm"))["uploaded_files"][0]["image_id"]
    assert outsider_client.get(f"/viewer/api/images/{image_id}/pixels/").status_code == 404


def test_the_dictionary_names_public_tags(owner_client):
    names = owner_client.get("/viewer/api/dictionary/").json()
    assert names["00100010"] == "Patient's Name"
