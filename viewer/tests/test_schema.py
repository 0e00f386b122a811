from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

VIEWER_OPERATIONS = [
    "viewer_image_pixels",
    "viewer_dicom_dictionary",
    "viewer_measurement_save",
    "viewer_measurements_list",
    "viewer_measurement_update",
    "viewer_measurement_delete",
    "viewer_annotation_save",
    "viewer_annotations_list",
    "viewer_annotation_update",
    "viewer_annotation_delete",
]


def test_every_viewer_endpoint_is_documented_in_the_openapi_schema(owner_client):
    response = owner_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    operations = {
        op["operationId"]
        for item in response.json()["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert set(VIEWER_OPERATIONS) <= operations


def test_the_schema_describes_the_pixel_headers(owner_client):
    schema = owner_client.get("/api/schema/?format=json").json()
    pixels = schema["paths"]["/viewer/api/images/{image_id}/pixels/"]["get"]
    assert "X-Window-Center" in pixels["responses"]["200"]["description"]
