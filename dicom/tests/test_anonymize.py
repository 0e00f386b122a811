"""The anonymiser against PS3.15 Annex E, checked independently of its implementation.

The expectations below are written by hand from Table E.1-1 (not read from
``dicom.anonymize_profile``), so a wrong row in the profile data fails here.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import corpus_rows
from dicom.anonymize import (
    IMPLEMENTATION_CLASS_UID,
    AnonymizationOptions,
    burned_in_annotation_warning,
    dataset_anonymize,
    dataset_bytes,
)
from dicom.errors import LightboxError
from dicom.ingest import instance_ingest

SECRET = b"test-secret"

# Hand-written from PS3.15 Table E.1-1 (basic profile column).
MUST_BE_REMOVED = [  # X
    "OtherPatientIDs",
    "OtherPatientNames",
    "OtherPatientIDsSequence",
    "PatientAddress",
    "PatientAge",
    "PatientBirthTime",
    "InstitutionAddress",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "AdditionalPatientHistory",
    "MedicalRecordLocator",
    "PatientTelephoneNumbers",
    "IssuerOfPatientID",
    "RequestAttributesSequence",
    "ReferencedPatientSequence",
]
MUST_BE_EMPTIED = [  # Z
    "PatientBirthDate",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
    "PatientSex",
    "StudyDate",
    "StudyTime",
]
MUST_NOT_SURVIVE = [  # Z or X/Z/D (may become empty, a dummy or a pseudonym)
    "PatientName",
    "PatientID",
    "InstitutionName",
    "StationName",
    "OperatorsName",
    "DeviceSerialNumber",
    "ProtocolName",
    "ContentDate",
    "AcquisitionDate",
    "SeriesDate",
]
UID_ATTRIBUTES = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
]
# UIDs naming a kind of thing (coding schemes, templates' contexts), not an instance.
NOT_INSTANCE_UIDS = {"CodingSchemeUID", "ContextUID", "MappingResourceUID", "TransferSyntaxUID"}
DATE_VRS = {"DA", "DT", "TM"}
DUMMIES = {"", "19000101", "000000", "19000101000000"}


def walk(ds: Dataset):
    """Every element of a dataset, sequences included."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item)


def values_of(ds: Dataset, keyword: str) -> list[str]:
    return [str(e.value) for e in walk(ds) if e.keyword == keyword]


def instance_uids(ds: Dataset) -> set[str]:
    return {
        str(v)
        for e in walk(ds)
        if e.VR == "UI"
        and e.value
        and not e.keyword.endswith("ClassUID")
        and e.keyword not in NOT_INSTANCE_UIDS
        for v in (e.value if e.VM > 1 else [e.value])
        if not str(v).startswith("1.2.840.10008.")
    }


def anonymize(ds: Dataset, uid_map: dict | None = None, **options) -> Dataset:
    return dataset_anonymize(
        ds=ds,
        options=AnonymizationOptions(**options),
        uid_map={} if uid_map is None else uid_map,
        secret=SECRET,
    )


def roundtrip(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))


def identified_ct() -> Dataset:
    """CT_small with identifying attributes added, some nested in sequences."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-123456"
    ds.PatientBirthDate = "19700102"
    ds.OtherPatientIDs = "OTHER-42"
    ds.InstitutionName = "Saint Example Hospital"
    ds.InstitutionAddress = "1 Example Street"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.AccessionNumber = "ACC-998877"
    ds.StudyID = "STUDY-7"
    ds.StudyDescription = "Chest for Jane Doe"
    ds.ImageComments = "call Jane at home"
    ds.add_new(0x00291010, "LO", "private secret")
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8"
    ref.PerformingPhysicianName = "Nested^Doctor"
    ref.add_new(0x00111001, "LO", "nested private")
    ds.ReferencedImageSequence = Sequence([ref])
    return ds


def assert_deidentified(source: Dataset, out: Dataset, *, keep_dates: bool = False) -> None:
    for keyword in MUST_BE_REMOVED:
        assert not values_of(out, keyword), keyword
    for keyword in MUST_BE_EMPTIED:
        if keep_dates and keyword in ("StudyDate", "StudyTime"):
            continue
        assert all(v in ("", "None") for v in values_of(out, keyword)), keyword
    for keyword in MUST_NOT_SURVIVE:
        if keep_dates and keyword.endswith("Date"):
            continue
        originals = {v for v in values_of(source, keyword) if v not in ("", "None")}
        assert not originals & set(values_of(out, keyword)), keyword
    assert not [e for e in walk(out) if e.tag.is_private], "private attributes survive"
    assert not instance_uids(source) & instance_uids(out), "an original UID survives"
    for keyword in UID_ATTRIBUTES:
        if keyword in source:
            assert out[keyword].value and out[keyword].value != source[keyword].value
    if not keep_dates:
        for elem in walk(out):
            if elem.VR in DATE_VRS:
                assert str(elem.value or "") in DUMMIES, elem.keyword


def test_identifying_attributes_are_removed_emptied_or_replaced():
    source = identified_ct()
    out = anonymize(source)
    assert_deidentified(source, out)
    assert out.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100"]
    assert out.PatientName != source.PatientName
    assert out.PatientID.startswith("ANON-")
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == source.SOPClassUID


def test_stale_group_lengths_are_dropped():
    source = identified_ct()
    source.add_new(0x00080000, "UL", 1234)
    out = roundtrip(anonymize(source))
    assert 0x00080000 not in out


def test_the_source_dataset_is_left_untouched():
    source = identified_ct()
    anonymize(source)
    assert source.PatientName == "Doe^Jane"
    assert 0x00291010 in source


def test_pixel_data_bytes_are_unchanged_and_the_file_reads_back():
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    back = roundtrip(anonymize(source))
    assert back.PixelData == source.PixelData
    assert back.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.preamble == b"\x00" * 128


def test_keep_dates_retains_full_dates_and_says_so():
    source = identified_ct()
    out = anonymize(source, keep_dates=True)
    assert_deidentified(source, out, keep_dates=True)
    assert out.StudyDate == source.StudyDate
    assert out.ContentDate == source.ContentDate
    assert out.PatientBirthDate in ("", None)  # not retained by the option
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113106"]
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_one_job_map_keeps_a_study_whole_and_references_consistent():
    first = identified_ct()
    second = identified_ct()
    second.SOPInstanceUID = "1.2.3.4.5.6.7.9"
    second.ReferencedImageSequence[0].ReferencedSOPInstanceUID = first.SOPInstanceUID
    job_map: dict[str, str] = {}
    out1, out2 = anonymize(first, job_map), anonymize(second, job_map)
    assert out1.StudyInstanceUID == out2.StudyInstanceUID != first.StudyInstanceUID
    assert out1.SeriesInstanceUID == out2.SeriesInstanceUID
    assert out1.FrameOfReferenceUID == out2.FrameOfReferenceUID
    assert out1.SOPInstanceUID != out2.SOPInstanceUID
    assert out2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out1.SOPInstanceUID
    assert out1.PatientID == out2.PatientID


def test_without_uid_structure_every_instance_gets_its_own_uids():
    first, second = identified_ct(), identified_ct()
    second.SOPInstanceUID = "1.2.3.4.5.6.7.9"
    job_map: dict[str, str] = {}
    out1 = anonymize(first, job_map, keep_uid_structure=False)
    out2 = anonymize(second, job_map, keep_uid_structure=False)
    assert out1.StudyInstanceUID != out2.StudyInstanceUID


def test_keyed_pseudonyms_are_stable_for_one_key_and_differ_for_another():
    source = identified_ct()
    a = dataset_anonymize(ds=source, options=AnonymizationOptions(), uid_map={}, secret=b"k1")
    b = dataset_anonymize(ds=source, options=AnonymizationOptions(), uid_map={}, secret=b"k1")
    c = dataset_anonymize(ds=source, options=AnonymizationOptions(), uid_map={}, secret=b"k2")
    assert (a.StudyInstanceUID, a.PatientID) == (b.StudyInstanceUID, b.PatientID)
    assert a.StudyInstanceUID != c.StudyInstanceUID and a.PatientID != c.PatientID
    assert len(a.StudyInstanceUID) <= 64


def test_a_file_without_sop_uids_is_refused_with_a_domain_error():
    ds = identified_ct()
    del ds.SOPInstanceUID
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    with pytest.raises(LightboxError, match="SOP Instance UID"):
        anonymize(ds)


def test_burned_in_annotation_is_flagged_when_stated_or_likely():
    ds = Dataset()
    ds.Modality = "CT"
    assert burned_in_annotation_warning(ds) is None
    ds.BurnedInAnnotation = "YES"
    assert burned_in_annotation_warning(ds) == "yes"
    us = Dataset()
    us.Modality = "US"
    assert burned_in_annotation_warning(us) == "unknown"
    us.BurnedInAnnotation = "NO"
    assert burned_in_annotation_warning(us) is None


@pytest.mark.django_db
def test_every_corpus_sample_that_ingests_anonymises_and_reingests(corpus: Path, owner):
    checked, failures = 0, []
    for row in corpus_rows():
        path = corpus / row["file"]
        try:
            with path.open("rb") as fh:
                instance_ingest(stream=fh, owner=owner, source="test", filename=row["file"])
        except LightboxError:
            continue  # not an archivable instance; the ingest tests cover why
        source = pydicom.dcmread(path, force=True)
        out = anonymize(source)
        try:
            assert_deidentified(source, out)
            data = dataset_bytes(out)
            back = pydicom.dcmread(io.BytesIO(data))
            if "PixelData" in source:
                original = source.PixelData
                assert back.PixelData[: len(original)] == original
                assert len(back.PixelData) - len(original) in (0, 1)  # odd length padded
            result = instance_ingest(
                stream=io.BytesIO(data), owner=owner, source="test", filename="anon.dcm"
            )
            assert result.instance.series.study.study_instance_uid == out.StudyInstanceUID
            assert result.instance.series.study.patient_name != str(source.get("PatientName"))
        except (AssertionError, LightboxError) as exc:
            failures.append(f"{row['file']}: {exc}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 35  # 39 of the 55 samples are archivable instances


@pytest.mark.django_db
def test_the_study_uid_is_one_per_study_across_its_instances_in_the_corpus(corpus: Path):
    by_study: dict[str, list[Path]] = {}
    for row in corpus_rows():
        try:
            ds = pydicom.dcmread(corpus / row["file"], stop_before_pixels=True, force=True)
            by_study.setdefault(str(ds.StudyInstanceUID), []).append(corpus / row["file"])
        except Exception:  # broken samples are the ingest tests' business
            continue
    job_map: dict[str, str] = {}
    for study_uid, paths in by_study.items():
        outs = {anonymize(pydicom.dcmread(p, force=True), job_map).StudyInstanceUID for p in paths}
        assert len(outs) == 1 and study_uid not in outs


def test_the_docs_table_is_in_sync_with_the_profile_data():
    from dicom.management.commands.anonymization_table import DOC_PATH, table_markdown

    assert DOC_PATH.read_text() == table_markdown(), (
        "docs/anonymization.md is stale: run `manage.py anonymization_table --write`"
    )
