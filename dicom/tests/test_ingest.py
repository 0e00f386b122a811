from __future__ import annotations

import io
import threading
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pydicom.multival import MultiValue

from conftest import corpus_rows
from developers.models import AuditEvent
from dicom.errors import (
    DuplicateInstanceConflict,
    InvalidDicomFile,
    MissingRequiredTag,
    StudyOwnershipConflict,
)
from dicom.ingest import instance_ingest
from dicom.models import Instance, Patient, Series, Study
from dicom.storage import original_name
from dicom.tests.factories import ct_small_path, ct_variant

pytestmark = pytest.mark.django_db


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def ingest_bytes(data: bytes, owner, **kwargs):
    return instance_ingest(stream=io.BytesIO(data), owner=owner, source="test", **kwargs)


def test_a_ct_is_stored_with_its_attributes_and_content_address(owner, isolated_storage):
    data = ct_small_path().read_bytes()
    result = ingest_bytes(data, owner, filename="CT_small.dcm")
    ds = pydicom.dcmread(ct_small_path(), stop_before_pixels=True)
    instance = result.instance
    assert result.status == "stored"
    assert instance.sop_instance_uid == ds.SOPInstanceUID
    assert instance.series.series_instance_uid == ds.SeriesInstanceUID
    assert instance.series.study.study_instance_uid == ds.StudyInstanceUID
    assert (instance.rows, instance.columns) == (ds.Rows, ds.Columns)
    assert instance.series.modality == "CT"
    assert instance.series.study.patient_name == str(ds.PatientName)
    assert instance.pixel_spacing_row == float(ds.PixelSpacing[0])
    assert instance.rescale_intercept == float(ds.RescaleIntercept)
    assert instance.file_path == original_name(instance.sha256)
    assert default_storage.open(instance.file_path).read() == data
    assert instance.header["00100010"]["vr"] == "PN"
    assert "7FE00010" not in instance.header
    assert instance.series.study.owner == owner
    assert stored_files(isolated_storage / "staging") == []


def test_identical_resend_stores_nothing_new(owner, isolated_storage):
    data = ct_variant()
    first = ingest_bytes(data, owner)
    files_before = stored_files(isolated_storage / "media")
    second = ingest_bytes(data, owner)
    assert second.status == "duplicate"
    assert second.instance.pk == first.instance.pk
    assert Instance.objects.count() == 1
    assert stored_files(isolated_storage / "media") == files_before


def test_same_sop_uid_with_other_bytes_is_a_conflict(owner, isolated_storage):
    sop = pydicom.uid.generate_uid()
    ingest_bytes(ct_variant(sop_uid=sop, StudyDescription="first"), owner)
    files_before = stored_files(isolated_storage / "media")
    with pytest.raises(DuplicateInstanceConflict):
        ingest_bytes(ct_variant(sop_uid=sop, StudyDescription="second"), owner)
    assert Instance.objects.count() == 1
    assert stored_files(isolated_storage / "media") == files_before
    assert stored_files(isolated_storage / "staging") == []


def test_overwrite_replaces_the_instance_and_releases_the_old_file(
    owner, isolated_storage, django_capture_on_commit_callbacks
):
    sop, study, series = (pydicom.uid.generate_uid() for _ in range(3))
    old = ingest_bytes(ct_variant(sop_uid=sop, study_uid=study, series_uid=series), owner)
    new_bytes = ct_variant(sop_uid=sop, study_uid=study, series_uid=series, InstanceNumber=7)
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_bytes(new_bytes, owner, overwrite=True)
    assert result.status == "overwritten"
    assert Instance.objects.get().instance_number == 7
    assert not default_storage.exists(old.instance.file_path)
    assert default_storage.open(result.instance.file_path).read() == new_bytes


def test_missing_uids_are_rejected_and_nothing_remains(owner, isolated_storage):
    ds = pydicom.dcmread(ct_small_path())
    del ds.StudyInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(MissingRequiredTag, match="StudyInstanceUID"):
        ingest_bytes(buffer.getvalue(), owner)
    assert (Patient.objects.count(), Study.objects.count(), Instance.objects.count()) == (0, 0, 0)
    assert stored_files(isolated_storage) == []


def test_instances_of_one_study_share_study_and_series_rows(owner):
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for number in range(1, 4):
        ingest_bytes(ct_variant(study_uid=study, series_uid=series, instance_number=number), owner)
    assert Study.objects.count() == 1
    assert Series.objects.count() == 1
    assert Study.objects.get().modalities_in_study == "CT"
    assert list(Instance.objects.values_list("instance_number", flat=True)) == [1, 2, 3]


def test_another_owner_cannot_add_to_or_probe_a_study(owner, outsider):
    study = pydicom.uid.generate_uid()
    data = ct_variant(study_uid=study)
    ingest_bytes(data, owner)
    with pytest.raises(StudyOwnershipConflict):
        ingest_bytes(ct_variant(study_uid=study), outsider)
    with pytest.raises(StudyOwnershipConflict):
        ingest_bytes(data, outsider)
    assert Instance.objects.count() == 1


def test_a_group_member_may_add_to_a_shared_study(owner, colleague):
    study = pydicom.uid.generate_uid()
    ingest_bytes(ct_variant(study_uid=study), owner)
    Study.objects.get().shared_with.add(colleague.groups.get())
    ingest_bytes(ct_variant(study_uid=study), colleague)
    assert Instance.objects.count() == 2


# --- more instances of a stored series (on PostgreSQL: one statement) ---------------------


def _series_of(owner) -> tuple[str, str]:
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ingest_bytes(ct_variant(study_uid=study, series_uid=series), owner)
    return study, series


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_more_instance_of_ones_own_series_is_one_statement_with_its_audit_record(
    owner, isolated_storage
):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's")
    study, series = _series_of(owner)
    data = ct_variant(study_uid=study, series_uid=series, instance_number=2)
    with CaptureQueriesContext(connection) as queries:
        result = ingest_bytes(data, owner)
    assert len(queries) == 1, [q["sql"][:60] for q in queries]
    instance = Instance.objects.select_related("series__study").get(pk=result.instance.pk)
    assert instance.series.series_instance_uid == series
    assert result.instance.series.study.study_instance_uid == study
    assert default_storage.open(instance.file_path).read() == data
    event = AuditEvent.objects.get(instance_id=instance.pk)
    assert (event.action, event.user_id, event.study_id, event.study_uid) == (
        "store",
        owner.pk,
        instance.series.study_id,
        study,
    )
    assert event.sop_instance_uid == instance.sop_instance_uid
    assert stored_files(isolated_storage / "staging") == []


def test_a_conflict_in_a_stored_series_changes_no_file(owner, isolated_storage):
    study, series = _series_of(owner)
    sop = pydicom.uid.generate_uid()
    ingest_bytes(ct_variant(study_uid=study, series_uid=series, sop_uid=sop), owner)
    files_before = stored_files(isolated_storage / "media")
    other = ct_variant(study_uid=study, series_uid=series, sop_uid=sop, StudyDescription="x")
    with pytest.raises(DuplicateInstanceConflict):
        ingest_bytes(other, owner)
    assert stored_files(isolated_storage / "media") == files_before
    assert stored_files(isolated_storage / "staging") == []
    assert Instance.objects.count() == 2
    assert AuditEvent.objects.filter(action="store").count() == 2


def test_another_owner_cannot_add_to_a_stored_series_and_leaves_no_file(
    owner, outsider, isolated_storage
):
    study, series = _series_of(owner)
    files_before = stored_files(isolated_storage / "media")
    with pytest.raises(StudyOwnershipConflict):
        ingest_bytes(ct_variant(study_uid=study, series_uid=series, instance_number=2), outsider)
    assert stored_files(isolated_storage / "media") == files_before
    assert Instance.objects.count() == 1


def test_an_instance_claiming_a_stored_series_of_another_study_is_refused(owner, isolated_storage):
    _, series = _series_of(owner)
    files_before = stored_files(isolated_storage / "media")
    with pytest.raises(InvalidDicomFile, match="another study"):
        ingest_bytes(ct_variant(series_uid=series, instance_number=2), owner)
    assert stored_files(isolated_storage / "media") == files_before


def test_a_group_member_adds_to_a_stored_series_of_a_shared_study(owner, colleague):
    study, series = _series_of(owner)
    Study.objects.get().shared_with.add(colleague.groups.get())
    result = ingest_bytes(ct_variant(study_uid=study, series_uid=series), colleague)
    assert result.instance.series.series_instance_uid == series
    event = AuditEvent.objects.get(instance_id=result.instance.pk)
    assert (event.user_id, event.study_uid) == (colleague.pk, study)


# --- the real corpus ----------------------------------------------------------------------


def _expected_to_ingest(path: Path) -> bool:
    """Independent expectation: a readable dataset with the three UIDs, not a DICOMDIR."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        return False
    if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == "1.2.840.10008.1.3.10":
        return False
    return all(
        str(ds.get(k, "") or "").strip()
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    )


CORPUS = [row["file"] for row in corpus_rows()] or ["<corpus absent>"]


@pytest.mark.corpus
@pytest.mark.parametrize("filename", CORPUS)
def test_every_corpus_file_ingests_or_is_rejected_as_expected(
    filename, corpus, owner, isolated_storage
):
    path = corpus / filename
    expected = _expected_to_ingest(path)
    from dicom.errors import LightboxError

    try:
        result = ingest_bytes(path.read_bytes(), owner, filename=filename)
    except LightboxError as exc:
        assert not expected, f"{filename} was rejected: {exc.message}"
        assert 400 <= exc.status < 500
        assert Instance.objects.count() == 0
        assert stored_files(isolated_storage) == []
        return
    assert expected, f"{filename} should have been rejected"
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    instance = result.instance
    assert instance.sop_instance_uid == ds.SOPInstanceUID
    assert instance.rows == ds.get("Rows")
    assert instance.columns == ds.get("Columns")
    assert instance.photometric_interpretation == str(ds.get("PhotometricInterpretation", ""))
    assert instance.series.modality == str(ds.get("Modality", ""))
    assert instance.transfer_syntax_uid == str(ds.file_meta.get("TransferSyntaxUID", ""))
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except ValueError:
        frames = 1
    assert instance.number_of_frames == frames
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID", "")
    assert instance.sop_class_uid == str(ds.get("SOPClassUID", "") or meta_class)
    for column, keyword in INTEGER_COLUMNS.items():
        assert getattr(instance, column) == _first(ds, keyword, int), keyword
    for column, keyword in NUMBER_COLUMNS.items():
        assert getattr(instance, column) == _first(ds, keyword, float), keyword
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2:
        expected = (float(spacing[0]), float(spacing[1]))
        assert (instance.pixel_spacing_row, instance.pixel_spacing_column) == expected
    assert default_storage.open(instance.file_path).read() == path.read_bytes()


INTEGER_COLUMNS = {
    "instance_number": "InstanceNumber",
    "samples_per_pixel": "SamplesPerPixel",
    "bits_allocated": "BitsAllocated",
    "bits_stored": "BitsStored",
    "pixel_representation": "PixelRepresentation",
}
NUMBER_COLUMNS = {
    "window_center": "WindowCenter",
    "window_width": "WindowWidth",
    "rescale_slope": "RescaleSlope",
    "rescale_intercept": "RescaleIntercept",
}


def _first(ds, keyword: str, kind):
    """The first value of an element as pydicom reads it, None when absent or unreadable."""
    try:
        value = ds.get(keyword)
        if isinstance(value, MultiValue):
            value = value[0]
        return kind(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


# --- concurrency (PostgreSQL) --------------------------------------------------------------


def run_together(work, arguments) -> list[BaseException]:
    """``work(argument)`` for every argument, each in its own thread with its own database
    connection, all released at once; returns what they raised."""
    arguments = list(arguments)
    barrier = threading.Barrier(len(arguments))
    errors: list[BaseException] = []

    def run(argument) -> None:
        try:
            barrier.wait()
            work(argument)
        except BaseException as exc:  # returned to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_new_study_create_one_study_and_series(owner):
    if connection.vendor != "postgresql":
        pytest.skip("row-level locking and concurrent writers need PostgreSQL")
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    payloads = [
        ct_variant(study_uid=study, series_uid=series, instance_number=n) for n in range(12)
    ]
    errors = run_together(lambda data: ingest_bytes(data, owner), payloads)
    assert errors == []
    assert Study.objects.count() == 1
    assert Series.objects.count() == 1
    assert Patient.objects.count() == 1
    assert Instance.objects.count() == len(payloads)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_writers_that_find_a_new_series_missing_together_insert_it_once(owner):
    """The later writers wait for the first one's commit and find the series it made: no
    INSERT that fails on the unique constraint (a rolled-back savepoint each)."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    payloads = [ct_variant(study_uid=study, series_uid=series, instance_number=n) for n in range(8)]
    inserts: list[str] = []

    def count_inserts(execute, sql, params, many, context):
        if sql.startswith(('INSERT INTO "dicom_series"', 'INSERT INTO "dicom_study"')):
            inserts.append(sql.split('"')[1])
        return execute(sql, params, many, context)

    def upload(data: bytes) -> None:
        with connection.execute_wrapper(count_inserts):
            ingest_bytes(data, owner)

    run_together(upload, payloads)
    assert Instance.objects.filter(series__series_instance_uid=series).count() == len(payloads)
    assert sorted(inserts) == ["dicom_series", "dicom_study"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_uploads_store_one_instance(owner, isolated_storage):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    data = ct_variant()
    statuses: list[str] = []
    run_together(lambda _: statuses.append(ingest_bytes(data, owner).status), range(6))
    assert sorted(statuses) == ["duplicate"] * 5 + ["stored"]
    assert Instance.objects.count() == 1
    assert len(stored_files(isolated_storage / "media")) == 1
