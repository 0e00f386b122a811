from __future__ import annotations

import io
import json
import zipfile

import pydicom
import pytest

from conftest import corpus_rows
from dicom.conversion import SECONDARY_CAPTURE
from dicom.models import Instance
from dicom.storage import blob_open
from dicom.tests.factories import ct_small_path, ct_variant, mr_small_path
from jobs.models import Job, JobItem
from jobs.tests.helpers import b64, jpeg_bytes, png_bytes, worker_drain

pytestmark = pytest.mark.django_db


def post_batch(client, files, capture, **headers):
    with capture(execute=True):
        return client.post(
            "/upload/batch",
            data=json.dumps({"files": files}),
            content_type="application/json",
            **headers,
        )


def status_of(client, batch_id):
    response = client.get(f"/upload/batch/{batch_id}/status")
    assert response.status_code == 200
    return response.json()


def files_of(client, batch_id):
    return {f["filename"]: f for f in client.get(f"/upload/batch/{batch_id}/files").json()["files"]}


@pytest.mark.corpus
def test_a_batch_of_every_sample_and_two_jpegs_goes_from_queued_to_completed(
    owner_client, corpus, django_capture_on_commit_callbacks
):
    names = [row["file"] for row in corpus_rows()]
    files = [{"filename": n, "content": b64((corpus / n).read_bytes())} for n in names]
    files += [
        {"filename": "photo-1.jpg", "content": b64(jpeg_bytes())},
        {"filename": "photo-2.jpeg", "content": b64(jpeg_bytes(color=(0, 0, 255)))},
    ]
    response = post_batch(owner_client, files, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["total_files"] == len(files)
    before = status_of(owner_client, body["batch_id"])
    assert before["status"] == "queued" and before["processed_files"] == 0

    worker_drain()

    after = status_of(owner_client, body["batch_id"])
    listed = files_of(owner_client, body["batch_id"])
    failed = {name: f for name, f in listed.items() if f["status"] == "failed"}
    done = {name: f for name, f in listed.items() if f["status"] == "done"}
    assert after["status"] == "completed"
    assert after["processed_files"] == after["total_files"] == len(files)
    assert after["progress_percentage"] == 100.0
    assert after["failed_files"] == len(failed) and len(done) + len(failed) == len(files)
    assert all(f["error"] and f["code"] for f in failed.values())
    assert failed["DICOMDIR"]["code"] == "dicomdir"
    assert done["CT_small.dcm"]["upload_id"]
    stored_ids = {f["upload_id"] for f in done.values()}
    assert Instance.objects.filter(pk__in=stored_ids).count() == len(stored_ids)
    photos = [
        Instance.objects.get(pk=done[n]["upload_id"]) for n in ("photo-1.jpg", "photo-2.jpeg")
    ]
    assert {p.sop_class_uid for p in photos} == {SECONDARY_CAPTURE}
    assert photos[0].series.study_id == photos[1].series.study_id  # one study per batch
    assert all(p.source == "batch" for p in photos)


def test_a_batch_of_dicom_pictures_and_junk_lists_each_outcome(
    owner_client, owner, django_capture_on_commit_callbacks
):
    files = [
        {"filename": "ct.dcm", "content": b64(ct_small_path().read_bytes())},
        {"filename": "mr.dcm", "content": b64(mr_small_path().read_bytes())},
        {
            "filename": "grey.png",
            "content": b64(png_bytes()),
            "patient_name": "Doe^Jane",
            "patient_id": "PID-7",
        },
        {"filename": "notes.txt", "content": b64(b"not an image at all" * 20)},
        {"filename": "broken.dcm", "content": "@@@ not base64 @@@"},
    ]
    response = post_batch(owner_client, files, django_capture_on_commit_callbacks)
    batch_id = response.json()["batch_id"]
    early = files_of(owner_client, batch_id)
    assert early["broken.dcm"]["status"] == "failed" and early["broken.dcm"]["code"] == "bad_base64"
    assert early["ct.dcm"]["status"] == "pending"

    worker_drain()

    status = status_of(owner_client, batch_id)
    listed = files_of(owner_client, batch_id)
    assert status["status"] == "completed"
    assert (status["total_files"], status["processed_files"], status["failed_files"]) == (5, 5, 2)
    assert listed["notes.txt"]["code"] == "invalid_dicom"
    assert listed["grey.png"]["converted"] is True
    picture = Instance.objects.get(pk=listed["grey.png"]["upload_id"])
    with blob_open(picture.file_path) as fh:
        ds = pydicom.dcmread(fh)
    assert (str(ds.PatientName), ds.PatientID, ds.ConversionType) == ("Doe^Jane", "PID-7", "WSD")
    assert picture.uploaded_by == owner
    job = Job.objects.get(pk=batch_id)
    assert not job.items.exclude(input_name="").exists()  # inputs cleaned up


def test_a_multipart_batch_with_a_zip_becomes_one_item_per_member(
    owner_client, django_capture_on_commit_callbacks
):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/one.dcm", ct_variant())
        zf.writestr("a/two.dcm", ct_variant())
    archive.seek(0)
    archive.name = "scans.zip"
    picture = io.BytesIO(jpeg_bytes())
    picture.name = "photo.jpg"
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/upload/batch", {"files": [archive, picture]}, format="multipart"
        )
    assert response.status_code == 202 and response.json()["total_files"] == 3
    worker_drain()
    listed = files_of(owner_client, response.json()["batch_id"])
    assert set(listed) == {"scans.zip/a/one.dcm", "scans.zip/a/two.dcm", "photo.jpg"}
    assert {f["status"] for f in listed.values()} == {"done"}


def test_a_batch_that_is_not_json_or_has_no_files_is_refused(owner_client):
    bad = owner_client.post("/upload/batch", data='{"files": [', content_type="application/json")
    empty = owner_client.post(
        "/upload/batch", data='{"files": []}', content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_json"
    assert empty.status_code == 400 and empty.json()["code"] == "no_files"
    assert Job.objects.count() == 0


def test_running_a_finished_batch_again_changes_nothing(
    owner_client, django_capture_on_commit_callbacks
):
    from jobs.services import job_run

    files = [{"filename": f"ct-{i}.dcm", "content": b64(ct_variant())} for i in range(3)]
    batch_id = post_batch(owner_client, files, django_capture_on_commit_callbacks).json()[
        "batch_id"
    ]
    worker_drain()
    job_run(job_id=batch_id)
    Job.objects.filter(pk=batch_id).update(status="processing")  # as if a worker died at the end
    job_run(job_id=batch_id)
    assert Instance.objects.count() == 3
    assert JobItem.objects.filter(job_id=batch_id, status="done").count() == 3
    assert status_of(owner_client, batch_id)["status"] == "completed"


def test_another_users_batch_is_not_found_but_staff_see_it(
    owner_client, outsider_client, owner, staff, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    files = [{"filename": "ct.dcm", "content": b64(ct_variant())}]
    batch_id = post_batch(owner_client, files, django_capture_on_commit_callbacks).json()[
        "batch_id"
    ]
    staff_client = APIClient()
    staff_client.force_authenticate(staff)
    assert outsider_client.get(f"/upload/batch/{batch_id}/status").status_code == 404
    assert outsider_client.get(f"/upload/batch/{batch_id}/files").status_code == 404
    assert outsider_client.get(f"/user/{owner.pk}/batches").status_code == 404
    assert owner_client.get("/upload/batch/not-a-uuid/status").status_code == 404
    assert staff_client.get(f"/upload/batch/{batch_id}/status").status_code == 200
    mine = owner_client.get(f"/user/{owner.pk}/batches").json()
    assert mine["count"] == 1 and mine["batches"][0]["batch_id"] == batch_id
    assert staff_client.get(f"/user/{owner.pk}/batches").json()["count"] == 1


def test_a_batch_needs_authentication(client):
    response = client.post("/upload/batch", data="{}", content_type="application/json")
    assert response.status_code in (401, 403)
