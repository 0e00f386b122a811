"""Analysing a whole series as a background job (``series_analysis``), through the real
routes, the real jobs app and django-tasks-db's own worker code."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.uid import generate_uid

from analysis.jobs import JOB_KIND, series_analysis_item_run
from analysis.models import AnalysisResult
from analysis.tests.factories import ingest_dataset, pydicom_sample
from jobs.models import Job, JobItem
from jobs.services import job_run
from jobs.tests.helpers import worker_drain

pytestmark = pytest.mark.django_db

ANOMALY = {"analysis_type": "anomaly_detection"}


@pytest.fixture
def series(owner):
    """Three CT instances of one series: CT_small.dcm with new SOP Instance UIDs."""
    base = pydicom.dcmread(pydicom_sample("CT_small.dcm"))
    series_uid = generate_uid(entropy_srcs=["series-job", "series"])
    instances = []
    for number in range(1, 4):
        ds = base.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["series-job", str(number)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        instances.append(ingest_dataset(ds, owner=owner))
    assert len({i.series_id for i in instances}) == 1
    return instances[0].series


def url(series_id):
    return f"/viewer/api/series/{series_id}/analyze/"


def start(client, series, body, capture):
    with capture(execute=True):
        response = client.post(url(series.pk), body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_a_series_job_stores_one_result_per_image_listed_by_each_image(
    series, owner_client, django_capture_on_commit_callbacks
):
    body = start(owner_client, series, ANOMALY, django_capture_on_commit_callbacks)
    assert (body["kind"], body["status"], body["total"]) == (JOB_KIND, "queued", 3)
    assert body["status_url"] == f"/jobs/{body['job_id']}/"

    worker_drain()

    status = owner_client.get(body["status_url"], {"items": 1}).json()
    assert (status["status"], status["processed"], status["percentage"]) == (
        "completed",
        3,
        100.0,
    )
    assert "3 of 3 images analysed" in status["message"]
    images = list(series.instances.order_by("instance_number"))
    for image, item in zip(images, status["items"], strict=True):
        listed = owner_client.get(f"/viewer/api/images/{image.pk}/analyses/").json()
        assert [a["id"] for a in listed["analyses"]] == [item["result"]["analysis_id"]]
        assert listed["analyses"][0]["analysis_type"] == "anomaly_detection"
    summary = owner_client.get(body["summary_url"]).json()["summary"]
    assert summary["analysed"] == 3 and summary["failed"] == []
    assert [r["image_id"] for r in summary["results"]] == [i.pk for i in images]
    assert summary["regions_found"] == sum(i["result"]["regions_found"] for i in status["items"])
    assert AnalysisResult.objects.count() == 3


def test_another_users_series_or_job_is_a_404(
    series, owner_client, outsider_client, django_capture_on_commit_callbacks
):
    refused = outsider_client.post(url(series.pk), ANOMALY, format="json")
    body = start(owner_client, series, ANOMALY, django_capture_on_commit_callbacks)

    assert refused.status_code == 404
    assert outsider_client.get(body["summary_url"]).status_code == 404
    assert outsider_client.get(body["status_url"]).status_code == 404
    assert Job.objects.filter(owner__email="outsider@example.com").count() == 0


def test_running_the_items_again_stores_no_second_result(
    series, owner_client, django_capture_on_commit_callbacks
):
    body = start(owner_client, series, ANOMALY, django_capture_on_commit_callbacks)
    worker_drain()
    job = Job.objects.get(pk=body["job_id"])
    ids_before = sorted(AnalysisResult.objects.values_list("pk", flat=True))

    # Each done item run again directly, then every item put back to pending (as if the
    # done marks had been lost) and the whole job run again by the jobs app.
    for item in job.items.all():
        assert series_analysis_item_run(job=job, item=item) == item.result
    job.items.update(status=JobItem.Status.PENDING)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.PROCESSING, finished_at=None)
    job_run(job_id=job.pk)

    assert sorted(AnalysisResult.objects.values_list("pk", flat=True)) == ids_before
    job.refresh_from_db()
    assert (job.status, job.processed, job.failed) == ("completed", 3, 0)


def test_bad_parameters_are_refused_before_anything_is_queued(series, owner_client):
    unknown = owner_client.post(url(series.pk), {"analysis_type": "diagnose"}, format="json")
    parameter = owner_client.post(
        url(series.pk), {**ANOMALY, "parameters": {"z_threshold": 0}}, format="json"
    )
    no_roi = owner_client.post(url(series.pk), {"analysis_type": "roi_measurement"}, format="json")

    assert [unknown.status_code, parameter.status_code, no_roi.status_code] == [400, 400, 400]
    assert no_roi.json()["code"] == "bad_roi"
    assert Job.objects.count() == 0


def test_an_image_that_cannot_be_analysed_fails_alone_and_every_failure_fails_the_job(
    series, owner_client, django_capture_on_commit_callbacks
):
    body = start(owner_client, series, {**ANOMALY, "frame": 2}, django_capture_on_commit_callbacks)
    worker_drain()

    job = owner_client.get(body["summary_url"]).json()
    assert (job["status"], job["failed"]) == ("failed", 3)
    assert {f["code"] for f in job["summary"]["failed"]} == {"frame_out_of_range"}
    assert AnalysisResult.objects.count() == 0


def test_roi_statistics_run_on_every_image_of_the_series(
    series, owner_client, django_capture_on_commit_callbacks
):
    roi = {"type": "rectangle", "x": 10, "y": 10, "width": 8, "height": 8}
    body = start(
        owner_client,
        series,
        {"analysis_type": "roi_measurement", "roi": roi},
        django_capture_on_commit_callbacks,
    )
    worker_drain()

    items = owner_client.get(body["status_url"], {"items": 1}).json()["items"]
    assert [i["result"]["pixel_count"] for i in items] == [64, 64, 64]
    assert AnalysisResult.objects.filter(analysis_type="roi_measurement").count() == 3
