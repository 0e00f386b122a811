from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from analysis.models import AnalysisResult
from analysis.tests.factories import ingest_path, pydicom_sample

pytestmark = [pytest.mark.django_db, pytest.mark.urls("analysis.tests.urls")]

ANOMALY = {"analysis_type": "anomaly_detection"}
ROI = {
    "analysis_type": "roi_measurement",
    "roi": {"type": "rectangle", "x": 0, "y": 0, "width": 4, "height": 4},
}


@pytest.fixture
def image(owner):
    return ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)


def url(image_id, action):
    return f"/viewer/api/images/{image_id}/{action}/"


def test_another_users_image_is_a_404_for_every_analysis_route(image, outsider_client):
    analyze = outsider_client.post(url(image.pk, "analyze"), ANOMALY, format="json")
    listed = outsider_client.get(url(image.pk, "analyses"))
    predicted = outsider_client.post(url(image.pk, "predict"), {"model": "x"}, format="json")

    assert [analyze.status_code, listed.status_code, predicted.status_code] == [404, 404, 404]
    assert AnalysisResult.objects.count() == 0


def test_a_colleague_of_a_shared_group_may_analyse_and_see_the_results(
    image, owner_client, colleague
):
    image.series.study.shared_with.add(Group.objects.get(name="radiology"))
    client = APIClient()
    client.force_authenticate(colleague)

    owner_client.post(url(image.pk, "analyze"), ROI, format="json")
    response = client.post(url(image.pk, "analyze"), ANOMALY, format="json")
    listed = client.get(url(image.pk, "analyses")).json()

    assert response.status_code == 201
    assert [a["analysis_type"] for a in listed["analyses"]] == [
        "anomaly_detection",
        "roi_measurement",
    ]
    assert listed["analyses"][0]["created_by"] == colleague.pk


def test_an_anonymous_request_is_refused(image):
    response = APIClient().post(url(image.pk, "analyze"), ANOMALY, format="json")

    assert response.status_code in (401, 403)


def test_an_unknown_analysis_type_or_frame_is_a_400(image, owner_client):
    unknown = owner_client.post(
        url(image.pk, "analyze"), {"analysis_type": "diagnose"}, format="json"
    )
    frame = owner_client.post(url(image.pk, "analyze"), {**ANOMALY, "frame": 3}, format="json")
    bad_filter = owner_client.get(url(image.pk, "analyses"), {"analysis_type": "x"})

    assert unknown.status_code == 400 and "analysis_type" in unknown.json()["detail"]
    assert frame.status_code == 400 and frame.json()["code"] == "frame_out_of_range"
    assert bad_filter.status_code == 400


def test_listing_analyses_takes_a_fixed_number_of_queries(
    image, owner_client, django_assert_max_num_queries
):
    for _ in range(3):
        owner_client.post(url(image.pk, "analyze"), ROI, format="json")

    with django_assert_max_num_queries(6):
        response = owner_client.get(url(image.pk, "analyses"))

    assert response.json()["count"] == 3
    assert response.json()["analyses"][0]["code_version"].startswith("lightbox-analysis/")


def test_the_routes_are_documented_in_the_openapi_schema(staff):
    client = APIClient()
    client.force_authenticate(staff)

    schema = client.get("/api/schema/", {"format": "json"}).json()

    operations = {
        op["operationId"]
        for path in schema["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {"viewer_image_analyze", "viewer_image_analyses", "viewer_image_predict"} <= operations
    assert "/viewer/api/images/{image_id}/predict/" in schema["paths"]


def test_the_project_urls_route_to_the_analysis_views():
    from django.urls import resolve

    from analysis import api

    routes = {
        "/viewer/api/images/7/analyze/": api.AnalyzeView,
        "/viewer/api/images/7/analyses/": api.AnalysesListView,
        "/viewer/api/images/7/predict/": api.PredictView,
    }
    for path, view in routes.items():
        assert resolve(path, urlconf="config.urls").func.view_class is view
