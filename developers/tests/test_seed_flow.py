"""Seed 003's "Example API Key Flow", end to end over HTTP."""

from __future__ import annotations

import base64

import pytest
from django.utils import timezone
from PIL import Image

from developers.models import DeveloperAPIKey, QuotaOverride
from developers.tests.helpers import PASSWORD, READ_URL, bearer, read_file, sample_file

pytestmark = pytest.mark.django_db


def test_the_seed_flow_works_from_token_to_quota_exhaustion(api, developer):
    tokens = api.post(
        "/api/token/", {"email": "user5@example.com", "password": PASSWORD}, format="json"
    ).json()
    assert set(tokens) == {"access", "refresh"}
    bearer(api, tokens["access"])

    profile = api.post(
        "/api/developer/profiles/",
        {"purpose": "testing", "organization": "My Organization"},
        format="json",
    )
    assert profile.status_code == 201
    assert profile.json() == {"purpose": "testing", "organization": "My Organization"}

    created = api.post("/api-keys/", {"name": "New API Key"}, format="json")
    assert created.status_code == 201
    key_body = created.json()
    assert set(key_body) == {"id", "name", "key"}
    assert key_body["name"] == "New API Key"
    stored = DeveloperAPIKey.objects.get(prefix=key_body["id"])
    assert key_body["key"] not in stored.hashed_key  # only the hash is kept

    listed = api.get("/api-keys/").json()
    assert [k["id"] for k in listed] == [key_body["id"]]
    assert "key" not in listed[0]

    key_client = type(api)()
    key_client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key_body['key']}")
    read = read_file(
        key_client,
        sample_file("CT_small.dcm"),
        fields="PatientName,StudyDate,Modality",
        return_format="png",
    )
    assert read.status_code == 200, read.content
    body = read.json()
    assert list(body) == ["PatientName", "StudyDate", "Modality", "ImageFormat", "Images"]
    assert body["Modality"] == "CT"
    assert body["ImageFormat"] == "PNG"
    assert len(body["Images"]) == 1
    assert base64.b64decode(body["Images"][0]).startswith(b"\x89PNG")

    summary = api.get("/api/developer/profiles/activity-summary/")
    assert summary.status_code == 200
    today = timezone.now().date().isoformat()
    assert summary.json()["daily_activity"] == [{"day": today, "count": 1}]
    assert summary.json()["monthly_total"] == 1

    QuotaOverride.objects.create(profile=stored.profile, endpoint=READ_URL, monthly_limit=2)
    assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
    refused = read_file(key_client, sample_file("CT_small.dcm"))
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Monthly API request for '/api/dicom/read/file/' limit exceeded.",
        "quota": 2,
        "requests_used": 3,
    }
    assert int(refused["Retry-After"]) > 0
    assert api.get("/api/developer/profiles/activity-summary/").json()["monthly_total"] == 2


def test_the_key_deleted_over_http_stops_working_at_once(api, developer, profile):
    bearer(
        api,
        api.post(
            "/api/token/", {"email": developer.email, "password": PASSWORD}, format="json"
        ).json()["access"],
    )
    body = api.post("/api-keys/", {"name": "short-lived"}, format="json").json()
    key_client = type(api)()
    key_client.credentials(HTTP_AUTHORIZATION=f"ApiKey {body['key']}")
    assert key_client.get("/api/developer/profiles/activity-summary/").status_code == 200

    deleted = api.delete(f"/api-keys/delete/{body['id']}/")

    assert deleted.status_code == 204
    assert key_client.get("/api/developer/profiles/activity-summary/").status_code == 401


def test_rendered_images_decode_in_every_return_format(key_client):
    for fmt, pil_name in (("png", "PNG"), ("jpeg", "JPEG"), ("gif", "GIF")):
        response = read_file(key_client, sample_file("CT_small.dcm"), return_format=fmt)
        assert response.status_code == 200, response.content
        assert response.json()["ImageFormat"] == pil_name
        image = Image.open(__import__("io").BytesIO(base64.b64decode(response.json()["Images"][0])))
        assert image.format == pil_name
        assert image.size == (128, 128)
