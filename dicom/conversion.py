"""Ordinary pictures (JPEG, PNG) as DICOM Secondary Capture Image Storage.

The result follows the SC Image IOD (PS3.3 A.8.1): SOP Class 1.2.840.10008.5.1.4.1.1.7,
(0008,0064) *Conversion Type* ``WSD`` (workstation), RGB or MONOCHROME2 8-bit pixels (16-bit
for 16-bit greyscale PNGs), Explicit VR Little Endian, freshly generated UIDs.

For a job, :func:`image_convert` is given deterministic UIDs and a fixed timestamp, so
converting the same picture twice gives byte-identical files: a re-run item is then a
duplicate of itself, never a second instance.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from dicom.errors import LightboxError
from dicom.storage import StagedFile, staging_write

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}

MSG_NOT_IMAGE = "The file is neither DICOM nor a JPEG or PNG picture."
MSG_UNREADABLE = "The picture could not be decoded: {reason}."
MSG_TOO_BIG = "The picture has more than {limit} pixels."


class InvalidImageFile(LightboxError):
    code = "invalid_image"
    default_message = MSG_NOT_IMAGE


@dataclass
class ConversionInfo:
    """What goes into the new file besides the pixels. Empty names/IDs stay empty
    (type 2 attributes); UIDs are generated when not given."""

    patient_name: str = ""
    patient_id: str = ""
    study_description: str = ""
    series_description: str = "Converted pictures"
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    instance_number: int = 1
    when: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


def image_kind(path: Path) -> str | None:
    """``"JPEG"`` or ``"PNG"`` from the file's signature, else None."""
    with path.open("rb") as fh:
        head = fh.read(8)
    for signature, kind in IMAGE_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    return None


def image_convert(*, staged: StagedFile, info: ConversionInfo) -> StagedFile:
    """Convert a staged JPEG/PNG into a staged DICOM file; the input is discarded."""
    try:
        ds = image_dataset(path=staged.path, info=info)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        buffer.seek(0)
        name = Path(staged.filename or "image").with_suffix(".dcm").name
        return staging_write(buffer, filename=name)
    finally:
        staged.discard()


def image_dataset(*, path: Path, info: ConversionInfo) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    kind = image_kind(path)
    if kind is None:
        raise InvalidImageFile()
    limit = settings.LIGHTBOX_MAX_RENDER_PIXELS
    try:
        with Image.open(path) as picture:
            if picture.width * picture.height > limit:
                raise InvalidImageFile(MSG_TOO_BIG.format(limit=limit), code="image_too_large")
            picture.load()
            pixels, photometric, bits = _pixels(picture)
            width, height = picture.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImageFile(MSG_UNREADABLE.format(reason=type(exc).__name__)) from None
    return _dataset(
        info=info,
        pixels=pixels,
        photometric=photometric,
        bits=bits,
        rows=height,
        columns=width,
        lossy=kind == "JPEG",
    )


def _pixels(picture: object) -> tuple[bytes, str, int]:
    """Pixel bytes, photometric interpretation, bits allocated."""
    import numpy as np

    mode = picture.mode  # type: ignore[attr-defined]
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(picture)
        array = np.clip(array, 0, 65535).astype("<u2")
        return array.tobytes(), "MONOCHROME2", 16
    if mode in ("L", "1", "LA") or (mode == "P" and _palette_is_grey(picture)):
        grey = picture.convert("L")  # type: ignore[attr-defined]
        return np.asarray(grey, dtype=np.uint8).tobytes(), "MONOCHROME2", 8
    rgb = picture.convert("RGB")  # type: ignore[attr-defined]
    return np.asarray(rgb, dtype=np.uint8).tobytes(), "RGB", 8


def _palette_is_grey(picture: object) -> bool:
    palette = picture.getpalette() or []  # type: ignore[attr-defined]
    triples = zip(palette[0::3], palette[1::3], palette[2::3], strict=False)
    return all(r == g == b for r, g, b in triples)


def _dataset(
    *,
    info: ConversionInfo,
    pixels: bytes,
    photometric: str,
    bits: int,
    rows: int,
    columns: int,
    lossy: bool,
) -> Dataset:
    when = timezone.localtime(info.when or timezone.now())
    day, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    sop_uid = info.sop_uid or generate_uid()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names may hold any script
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = day, time
    # Patient and General Study modules (type 2: present, possibly empty)
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = info.study_uid or generate_uid()
    ds.StudyDate, ds.StudyTime = day, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = info.study_description
    # General Series and SC Equipment modules
    ds.Modality = "OT"
    ds.SeriesInstanceUID = info.series_uid or generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDate, ds.SeriesTime = day, time
    ds.SeriesDescription = info.series_description
    ds.ConversionType = "WSD"
    # General Image, SC Image and Image Pixel modules
    ds.InstanceNumber = info.instance_number
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = day, time
    ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = day, time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.LossyImageCompression = "01" if lossy else "00"
    ds.BurnedInAnnotation = "YES"  # a picture may show anything, names included
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    for keyword, value in info.extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels
    return ds


def uids_for(*, seed: str, instance: int) -> tuple[str, str, str]:
    """Deterministic study, series and SOP instance UIDs for a job's picture: the same
    seed always gives the same UIDs (pydicom's ``generate_uid`` with entropy sources)."""
    return (
        generate_uid(entropy_srcs=[seed, "study"]),
        generate_uid(entropy_srcs=[seed, "series"]),
        generate_uid(entropy_srcs=[seed, "instance", str(instance)]),
    )
