"""Anonymisation endpoints end to end: a study and uploaded files become ZIP jobs run by the
real database worker; one stored upload is served anonymised."""

from __future__ import annotations

import io
import json
import zipfile

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicom.ingest import instance_ingest
from dicom.models import Instance, Study
from dicom.tests.factories import ct_variant
from jobs.models import Job, JobItem
from jobs.tests.helpers import worker_drain

pytestmark = pytest.mark.django_db


def store_study(owner, *, instances: int = 3) -> Study:
    """One study of ``instances`` CT images over two series, with a patient name."""
    study_uid, series = generate_uid(), [generate_uid(), generate_uid()]
    for n in range(instances):
        data = ct_variant(
            study_uid=study_uid,
            series_uid=series[n % 2],
            instance_number=n + 1,
            PatientName="Doe^Jane",
            PatientID="PID-0042",
            InstitutionName="Saint Example Hospital",
        )
        instance_ingest(stream=io.BytesIO(data), owner=owner, source="test", filename=f"{n}.dcm")
    return Study.objects.get(study_instance_uid=study_uid)


def run_job(client, response) -> tuple[dict, zipfile.ZipFile]:
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued"
    worker_drain()
    status = client.get(body["status_url"]).json()
    assert status["status"] == "completed", status
    result = client.get(status["result_url"])
    assert result.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(result.streaming_content)))
    return status, archive


def dicoms_in(archive: zipfile.ZipFile) -> list[pydicom.Dataset]:
    return [
        pydicom.dcmread(io.BytesIO(archive.read(n)))
        for n in archive.namelist()
        if n.endswith(".dcm")
    ]


def test_a_study_becomes_one_anonymised_study_in_a_zip(
    owner, owner_client, django_capture_on_commit_callbacks
):
    study = store_study(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            f"/viewer/api/studies/{study.pk}/anonymize/", {"keep_dates": False}, format="json"
        )
    status, archive = run_job(owner_client, response)
    assert (status["total"], status["processed"], status["failed"]) == (3, 3, 0)
    files = dicoms_in(archive)
    assert len(files) == 3
    assert len({ds.StudyInstanceUID for ds in files}) == 1
    assert files[0].StudyInstanceUID != study.study_instance_uid
    assert len({ds.SeriesInstanceUID for ds in files}) == 2
    for ds in files:
        assert ds.PatientIdentityRemoved == "YES"
        assert "Doe" not in str(ds.PatientName) and ds.PatientID != "PID-0042"
        assert "InstitutionName" not in ds or ds.InstitutionName in ("", None)
    report = json.loads(archive.read("anonymization_report.json"))
    assert report["anonymized"] == 3 and report["failed"] == []
    assert report["options"] == {
        "keep_dates": False,
        "keep_uid_structure": True,
        "use_secure": False,
    }
    assert "salt" not in Job.objects.get(pk=status["job_id"]).params
    from developers.models import AuditEvent

    assert AuditEvent.objects.filter(action="anonymize", study_id=study.pk).count() == 1


def test_the_anonymised_zip_reingests_as_a_new_study(
    owner, outsider, owner_client, django_capture_on_commit_callbacks
):
    study = store_study(owner, instances=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            f"/viewer/api/studies/{study.pk}/anonymize/", {}, format="json"
        )
    _, archive = run_job(owner_client, response)
    for name in archive.namelist():
        if name.endswith(".dcm"):
            instance_ingest(
                stream=io.BytesIO(archive.read(name)), owner=outsider, source="test", filename=name
            )
    copy = Study.objects.get(owner=outsider)
    assert copy.patient_name.startswith("ANONYMOUS^ANON-")
    assert Instance.objects.filter(series__study=copy).count() == 2


def test_use_secure_gives_the_same_pseudonyms_in_two_jobs(
    owner, owner_client, django_capture_on_commit_callbacks
):
    study = store_study(owner, instances=1)
    uids = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(
                f"/viewer/api/studies/{study.pk}/anonymize/", {"use_secure": True}, format="json"
            )
        _, archive = run_job(owner_client, response)
        uids.append(dicoms_in(archive)[0].StudyInstanceUID)
    assert uids[0] == uids[1] != study.study_instance_uid


def test_without_use_secure_two_jobs_give_unrelated_pseudonyms(
    owner, owner_client, django_capture_on_commit_callbacks
):
    study = store_study(owner, instances=1)
    uids = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(
                f"/viewer/api/studies/{study.pk}/anonymize/", {}, format="json"
            )
        uids.append(dicoms_in(run_job(owner_client, response)[1])[0].StudyInstanceUID)
    assert uids[0] != uids[1]


def test_an_item_run_twice_writes_the_very_same_file(
    owner, owner_client, django_capture_on_commit_callbacks
):
    """What makes a job re-run after a worker crash safe: items are deterministic."""
    from django.core.files.storage import default_storage

    from dicom.anonymize import anonymize_item_run

    study = store_study(owner, instances=1)
    with django_capture_on_commit_callbacks(execute=False):
        response = owner_client.post(
            f"/viewer/api/studies/{study.pk}/anonymize/", {}, format="json"
        )
    job = Job.objects.get(pk=response.json()["job_id"])
    item = job.items.get()
    first = anonymize_item_run(job=job, item=item)
    data = default_storage.open(first["file"]).read()
    second = anonymize_item_run(job=job, item=item)
    assert second == first
    assert default_storage.open(second["file"]).read() == data


def test_uploaded_files_are_anonymised_and_bad_ones_fail_one_by_one(
    owner_client, django_capture_on_commit_callbacks
):
    def upload(name: str, data: bytes | None = None) -> SimpleUploadedFile:
        if data is None:
            data = open(get_testdata_file(name), "rb").read()  # noqa: SIM115
        return SimpleUploadedFile(name, data)

    files = [upload("CT_small.dcm"), upload("MR_small.dcm"), upload("junk.dcm", b"nope" * 50)]
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/viewer/api/anonymize/batch/",
            {"files": files, "keep_dates": "true"},
            format="multipart",
        )
    status, archive = run_job(owner_client, response)
    assert (status["total"], status["processed"], status["failed"]) == (3, 3, 1)
    out = dicoms_in(archive)
    assert sorted(ds.Modality for ds in out) == ["CT", "MR"]
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct = next(ds for ds in out if ds.Modality == "CT")
    assert ct.StudyDate == source.StudyDate  # keep_dates
    assert ct.PixelData == source.PixelData
    report = json.loads(archive.read("anonymization_report.json"))
    assert [f["code"] for f in report["failed"]] == ["invalid_dicom"]
    assert Instance.objects.count() == 0  # nothing was stored in the archive


def test_an_ultrasound_without_burned_in_annotation_is_flagged(
    owner_client, django_capture_on_commit_callbacks
):
    data = open(get_testdata_file("ExplVR_BigEnd.dcm"), "rb").read()  # noqa: SIM115
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/viewer/api/anonymize/batch/",
            {"files": [SimpleUploadedFile("us.dcm", data)]},
            format="multipart",
        )
    status, archive = run_job(owner_client, response)
    item = JobItem.objects.get(job_id=status["job_id"])
    assert item.result["burned_in_annotation"] == "unknown"
    report = json.loads(archive.read("anonymization_report.json"))
    assert report["burned_in_annotation"][0]["value"] == "unknown"


def test_another_users_study_cannot_be_anonymised(owner, outsider_client):
    study = store_study(owner, instances=1)
    response = outsider_client.post(f"/viewer/api/studies/{study.pk}/anonymize/", {}, format="json")
    assert response.status_code == 404
    assert Job.objects.count() == 0


def test_a_bad_option_is_a_400(owner, owner_client):
    study = store_study(owner, instances=1)
    response = owner_client.post(
        f"/viewer/api/studies/{study.pk}/anonymize/", {"keep_dates": "maybe"}, format="json"
    )
    assert response.status_code == 400


def test_a_batch_without_files_is_a_400(owner_client):
    response = owner_client.post("/viewer/api/anonymize/batch/", {}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "no_files"


def test_the_preprocessed_dicom_of_an_upload_is_its_anonymised_copy(
    owner, owner_client, outsider_client
):
    study = store_study(owner, instances=1)
    instance = Instance.objects.get(series__study=study)
    response = owner_client.get(f"/upload/{instance.pk}/preprocessed-dicom")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.SOPInstanceUID != instance.sop_instance_uid
    assert "Doe" not in str(ds.PatientName)
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert ds.PixelData == original.PixelData
    assert outsider_client.get(f"/upload/{instance.pk}/preprocessed-dicom").status_code == 404


def test_the_anonymisation_endpoints_are_in_the_openapi_schema(owner_client):
    schema = owner_client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "/viewer/api/studies/{study_id}/anonymize/" in paths
    assert "/viewer/api/anonymize/batch/" in paths
    assert "/upload/{upload_id}/preprocessed-dicom" in paths
    assert "/examens-medicaux/images" in paths
    assert "/dicom/upload" in paths
