"""Real DICOM files for the analysis tests: pydicom's samples, the corpus, and phantoms
built here with pydicom (numpy arrays written as real CT files), all through real ingest."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicom.ingest import instance_ingest
from dicom.models import Instance

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def pydicom_sample(name: str) -> Path:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name))


def ingest_path(path: Path, *, owner: Any) -> Instance:
    with path.open("rb") as fh:
        return instance_ingest(stream=fh, owner=owner, source="test", filename=path.name).instance


def ingest_dataset(ds: Dataset, *, owner: Any) -> Instance:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return instance_ingest(stream=buffer, owner=owner, source="test", filename="t.dcm").instance


def hu_dataset(values: np.ndarray, *, spacing: tuple[float, float] | None, seed: str) -> Dataset:
    """A CT image whose HU are ``values`` (stored = HU + 1024, signed 16-bit)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[seed, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[seed, "series"])
    ds.PatientID = "PHANTOM"
    ds.PatientName = "Phantom^Uniform"
    ds.Modality = "CT"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    if spacing is not None:
        ds.PixelSpacing = [spacing[0], spacing[1]]
    ds.PixelData = np.rint(values + 1024).astype(np.int16).tobytes()
    return ds


def with_disc(
    path: Path, *, cx: int, cy: int, radius: int, hu: float, seed: str
) -> tuple[Dataset, list[int]]:
    """The file at ``path`` with a disc of ``hu`` painted in; returns it and the true box."""
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array.copy()
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    rows, columns = np.ogrid[: stored.shape[0], : stored.shape[1]]
    disc = (columns - cx) ** 2 + (rows - cy) ** 2 <= radius**2
    stored[disc] = np.rint((hu - intercept) / slope).astype(stored.dtype)
    ds.PixelData = stored.tobytes()
    uid = generate_uid(entropy_srcs=[seed, "sop"])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    return ds, [cx - radius, cy - radius, 2 * radius + 1, 2 * radius + 1]


def box_iou(a: list[int], b: list[int]) -> float:
    """Intersection over union of two [x, y, width, height] boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def modality_values(path_or_ds: Path | Dataset) -> np.ndarray:
    """Independent reference: ``pixel_array`` * slope + intercept, in float64."""
    ds = path_or_ds if isinstance(path_or_ds, Dataset) else pydicom.dcmread(path_or_ds)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return ds.pixel_array.astype(np.float64) * slope + intercept
