from __future__ import annotations

import pytest

from viewer.models import Annotation, Measurement
from viewer.tests.helpers import sample_path, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_id(owner_client):
    return upload(owner_client, sample_path("CT_small.dcm"))["uploaded_files"][0]["image_id"]


def line(image_id, **extra):
    return {
        "image_id": image_id,
        "measurement_type": "line",
        "coordinates": [[10, 10], [40, 50]],
        "value": 21.5,
        "unit": "mm",
        "notes": "Lesion measurement",
        **extra,
    }


def test_saving_a_seed_004_measurement_stores_it_for_the_caller(owner_client, owner, image_id):
    response = owner_client.post("/viewer/api/measurements/save/", line(image_id), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["image_id"] == image_id
    assert body["coordinates"] == [[10.0, 10.0], [40.0, 50.0]]
    assert Measurement.objects.get(pk=body["id"]).user == owner


def test_measurements_are_listed_per_image_and_per_user(owner_client, colleague, image_id):
    owner_client.post("/viewer/api/measurements/save/", line(image_id), format="json")
    response = owner_client.get(f"/viewer/api/measurements/?image_id={image_id}")
    assert response.status_code == 200
    assert [m["value"] for m in response.json()] == [21.5]


def test_a_measurement_can_be_updated_and_deleted(owner_client, image_id):
    saved = owner_client.post("/viewer/api/measurements/save/", line(image_id), format="json")
    url = f"/viewer/api/measurements/{saved.json()['id']}/"
    patched = owner_client.patch(url, {"notes": "grew", "value": 30}, format="json")
    assert patched.status_code == 200
    assert patched.json()["notes"] == "grew"
    assert owner_client.delete(url).status_code == 204
    assert not Measurement.objects.exists()


def test_wrong_coordinates_are_a_clear_400(owner_client, image_id):
    payload = line(image_id, measurement_type="angle")
    response = owner_client.post("/viewer/api/measurements/save/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_coordinates"


def test_an_unknown_type_is_a_400_not_a_500(owner_client, image_id):
    payload = line(image_id, measurement_type="banana")
    response = owner_client.post("/viewer/api/measurements/save/", payload, format="json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_another_users_image_answers_404_for_saving_and_listing(outsider_client, image_id):
    saved = outsider_client.post("/viewer/api/measurements/save/", line(image_id), format="json")
    assert saved.status_code == 404
    listed = outsider_client.get(f"/viewer/api/measurements/?image_id={image_id}")
    assert listed.status_code == 404
    note = {"image_id": image_id, "x": 1, "y": 2, "text": "mine?"}
    noted = outsider_client.post("/viewer/api/annotations/save/", note, format="json")
    assert noted.status_code == 404


def test_another_users_measurement_cannot_be_changed(owner_client, outsider_client, image_id):
    saved = owner_client.post("/viewer/api/measurements/save/", line(image_id), format="json")
    url = f"/viewer/api/measurements/{saved.json()['id']}/"
    assert outsider_client.patch(url, {"notes": "x"}, format="json").status_code == 404
    assert outsider_client.delete(url).status_code == 404
    assert Measurement.objects.count() == 1


def test_listing_without_image_id_is_a_400(owner_client):
    response = owner_client.get("/viewer/api/measurements/")
    assert response.status_code == 400
    assert response.json()["code"] == "image_id_required"


def test_a_seed_004_annotation_round_trips(owner_client, image_id):
    payload = {"image_id": image_id, "x": 150, "y": 150, "text": "Suspicious area"}
    saved = owner_client.post("/viewer/api/annotations/save/", payload, format="json")
    assert saved.status_code == 201
    url = f"/viewer/api/annotations/{saved.json()['id']}/"
    assert owner_client.patch(url, {"text": "Benign"}, format="json").json()["text"] == "Benign"
    listed = owner_client.get(f"/viewer/api/annotations/?image_id={image_id}").json()
    assert [(a["x"], a["y"], a["text"]) for a in listed] == [(150.0, 150.0, "Benign")]
    assert owner_client.delete(url).status_code == 204
    assert not Annotation.objects.exists()


def test_a_frame_beyond_the_image_is_refused(owner_client, image_id):
    payload = {"image_id": image_id, "x": 1, "y": 1, "text": "t", "frame": 3}
    response = owner_client.post("/viewer/api/annotations/save/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_frame"
