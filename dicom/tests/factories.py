"""Real DICOM files for tests, derived from files that ship inside pydicom."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid


def ct_small_path() -> Path:
    return Path(get_testdata_file("CT_small.dcm"))


def mr_small_path() -> Path:
    return Path(get_testdata_file("MR_small.dcm"))


def dataset_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_variant(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    instance_number: int = 1,
    **attributes: object,
) -> bytes:
    """CT_small.dcm with new UIDs (and any attributes overridden): a distinct instance."""
    ds = pydicom.dcmread(ct_small_path())
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = instance_number
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return dataset_bytes(ds)
