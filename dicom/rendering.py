"""The one renderer: one frame of a DICOM image to PNG, JPEG, GIF or WebP bytes.

Every image that leaves Lightbox (preview, data URL, DICOMweb rendered and thumbnail, export,
the developer read/file API) comes from :func:`frame_render`. The pipeline is the grayscale
and colour pipelines of PS3.4 N.2: decode ONE frame, Modality LUT, VOI LUT, MONOCHROME1
inversion, 8 bits, resize, encode. Colour images skip the LUTs.

The module is pure: it takes a path, a seekable binary file or a pydicom ``Dataset`` and never
touches models or storage. Django settings are read lazily, for the memory limit only. Every
failure surfaces as a domain error from :mod:`dicom.errors`; no raw exception escapes.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicom.errors import InvalidDicomFile, LightboxError, NoPixelData, PixelDataUndecodable

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | BinaryIO | Dataset

DEFAULT_MAX_RENDER_PIXELS = 64 * 1024 * 1024

ERR_FRAME_RANGE = "Frame {frame} is out of range: this instance has {count} frame(s)."
ERR_FORMAT = "Unknown image format {fmt!r}: use png, jpeg, gif or webp."
ERR_SIZE = "The size must be two positive integers (max width, max height)."
ERR_QUALITY = "The quality must be an integer from 1 to 100."
ERR_WINDOW = "The window must be two finite numbers (center, width) with a positive width."
ERR_NO_PIXELS = "This instance has no pixel data to render."
ERR_NO_MATRIX = "This instance has pixel data but no (0028,0010) Rows / (0028,0011) Columns."
ERR_TOO_LARGE = "A frame of {samples} samples exceeds the render limit of {limit} samples."
ERR_UNDECODABLE = "{syntax} pixel data cannot be decoded: {reason}"
ERR_UNREADABLE = "The file cannot be read as DICOM: {reason}"

# fmt -> (Pillow format, media type)
_FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "gif": ("GIF", "image/gif"),
    "webp": ("WEBP", "image/webp"),
}
_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
# The 4 tag bytes found right after a header read with ``stop_before_pixels``, both byte orders.
_PIXEL_TAG_BYTES = {
    (tag >> 16).to_bytes(2, order) + (tag & 0xFFFF).to_bytes(2, order): keyword
    for tag, keyword in _PIXEL_TAGS.items()
    for order in ("little", "big")
}


class FrameOutOfRange(LightboxError):
    code = "frame_out_of_range"
    default_message = "The frame is out of range."


class UnsupportedImageFormat(LightboxError):
    code = "unsupported_image_format"
    default_message = ERR_FORMAT.format(fmt="")


@dataclass(frozen=True)
class _Header:
    ds: Dataset  # the attributes before the pixel data (all of them when ``complete``)
    pixel_keyword: str | None  # PixelData, FloatPixelData, DoubleFloatPixelData or None
    complete: bool  # ``ds`` holds the pixel data too, so decode from it


# --- public API -------------------------------------------------------------------------


def media_type(fmt: str) -> str:
    """The media type of an output format (``png``, ``jpeg``/``jpg``, ``gif``, ``webp``)."""
    return _format(fmt)[1]


def frame_count(ds: Dataset) -> int:
    """(0028,0008) *Number of Frames*; absent, empty, zero or invalid (``'1A'``) counts as 1."""
    try:
        count = int(float(str(ds.get("NumberOfFrames") or 1)))
    except (TypeError, ValueError, OverflowError):
        return 1
    return max(count, 1)


def window_default(ds: Dataset, frame: int = 0) -> tuple[float, float] | None:
    """The (center, width) the renderer takes from the file, or None.

    The frame's (0028,9132) *Frame VOI LUT Sequence* (enhanced multi-frame functional
    groups) wins over the top-level (0028,1050) *Window Center* / (0028,1051) *Window Width*;
    the first of several values is used. None means a VOI LUT Sequence or the frame's
    min/max will be used instead.
    """
    item = _window_item(ds, frame)
    return _window_of(item) if item is not None else None


def frame_pixels(*, source: Source, frame: int = 0) -> np.ndarray:
    """Decode ONE frame (0-based): the values after the Modality LUT.

    Monochrome frames come back as float32 (HU for CT, after (0028,1053) *Rescale Slope* /
    (0028,1052) *Rescale Intercept* or the (0028,3000) *Modality LUT Sequence*); colour
    frames as RGB uint8/uint16 (YBR converted, PALETTE COLOR expanded through the palette).
    (3004,000E) *Dose Grid Scaling* is not a Modality LUT and is not applied.
    """
    header = _read_header(source)
    _check_frame(header, frame)
    return _pixels(source, header, frame)


def frame_render(
    *,
    source: Source,
    frame: int = 0,
    window: tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    fmt: str = "png",
    quality: int = 90,
    invert: bool = False,
) -> bytes:
    """Render one frame to encoded image bytes.

    ``window`` is (center, width) and overrides the file's; ``size`` is (max width, max
    height): the image is shrunk to fit inside it, keeping its aspect, and never enlarged.
    ``quality`` applies to JPEG and WebP. ``invert`` flips the displayed gray levels (on top
    of the MONOCHROME1 inversion the file asks for).
    """
    pil_format = _format(fmt)[0]
    _check_render_options(window=window, size=size, quality=quality)
    header = _read_header(source)
    _check_frame(header, frame)
    values = _pixels(source, header, frame)
    try:
        image = _display(values, header, frame, window)
        return _encode(255 - image if invert else image, pil_format, size, quality)
    except LightboxError:
        raise
    except Exception as exc:  # a rendering failure is a 422, never a 500
        raise PixelDataUndecodable(ERR_UNDECODABLE.format(syntax="The", reason=exc)) from exc


# --- validation ---------------------------------------------------------------------------


def _format(fmt: str) -> tuple[str, str]:
    found = _FORMATS.get(str(fmt).strip().lower())
    if found is None:
        raise UnsupportedImageFormat(ERR_FORMAT.format(fmt=fmt))
    return found


def _check_render_options(
    *, window: tuple[float, float] | None, size: tuple[int, int] | None, quality: int
) -> None:
    if size is not None and not (len(size) == 2 and all(_positive_int(v) for v in size)):
        raise LightboxError(ERR_SIZE)
    if not (_positive_int(quality) and quality <= 100):
        raise LightboxError(ERR_QUALITY)
    if window is not None and not _valid_window(window):
        raise LightboxError(ERR_WINDOW)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _valid_window(window: Sequence[float]) -> bool:
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        return False
    return math.isfinite(center) and math.isfinite(width) and width > 0


def _check_frame(header: _Header, frame: int) -> None:
    """Refuse before decoding: no pixels (415), bad frame (400), too many samples (422)."""
    ds = header.ds
    if header.pixel_keyword is None:
        raise NoPixelData(ERR_NO_PIXELS)
    rows, columns = _int(ds.get("Rows")), _int(ds.get("Columns"))
    if not rows or not columns:
        raise NoPixelData(ERR_NO_MATRIX)
    count = frame_count(ds)
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < count:
        raise FrameOutOfRange(ERR_FRAME_RANGE.format(frame=frame, count=count))
    samples = rows * columns * max(_int(ds.get("SamplesPerPixel")) or 1, 1)
    limit = _max_render_pixels()
    if samples > limit:
        raise PixelDataUndecodable(ERR_TOO_LARGE.format(samples=samples, limit=limit))


def _max_render_pixels() -> int:
    from django.conf import settings

    if not settings.configured:
        return DEFAULT_MAX_RENDER_PIXELS
    return int(getattr(settings, "LIGHTBOX_MAX_RENDER_PIXELS", DEFAULT_MAX_RENDER_PIXELS))


# --- reading and decoding -----------------------------------------------------------------


def _read_header(source: Source) -> _Header:
    """Read the attributes before the pixel data, leaving a file object where it was."""
    if isinstance(source, Dataset):
        keyword = next((k for k in _PIXEL_TAGS.values() if k in source), None)
        return _Header(source, keyword, complete=True)
    try:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as f:
                return _header_from_file(f)
        start = source.tell()
        try:
            return _header_from_file(source)
        finally:
            source.seek(start)
    except Exception as exc:  # any parse failure means "not readable DICOM"
        raise InvalidDicomFile(ERR_UNREADABLE.format(reason=exc)) from exc


def _header_from_file(f: BinaryIO) -> _Header:
    start = f.tell()
    ds = dcmread(f, stop_before_pixels=True, force=True)
    if _transfer_syntax(ds) == DeflatedExplicitVRLittleEndian:
        # The frame decoder reads the raw file and cannot inflate it: keep the whole dataset.
        f.seek(start)
        return _read_header(dcmread(f, force=True))
    # dcmread stops AT the pixel data tag (or at the end of the file when there is none).
    return _Header(ds, _PIXEL_TAG_BYTES.get(f.read(4)), complete=False)


def _transfer_syntax(ds: Dataset) -> UID | None:
    meta = getattr(ds, "file_meta", None)
    return meta.get("TransferSyntaxUID") if meta is not None else None


def _pixels(source: Source, header: _Header, frame: int) -> np.ndarray:
    try:
        stored = _decode(source, header, frame)
        return _modality_values(stored, header.ds, frame)
    except LightboxError:
        raise
    except Exception as exc:  # plugins raise anything; the client gets a 422
        syntax = getattr(_transfer_syntax(header.ds), "name", None) or "The"
        logger.info("pixel decode failed (%s): %s", syntax, exc)
        raise PixelDataUndecodable(ERR_UNDECODABLE.format(syntax=syntax, reason=exc)) from exc


def _decode(source: Source, header: _Header, frame: int) -> np.ndarray:
    """Decode only ``frame``; pydicom reads just that frame's bytes from a path or file.

    ``raw=False`` lets pydicom convert (0028,0004) YBR_FULL / YBR_FULL_422 to RGB exactly
    once: it knows whether the JPEG plugin already did (verified on the corpus samples).
    """
    from pydicom.pixels import pixel_array

    if _frames_valid(header.ds):
        return pixel_array(header.ds if header.complete else source, index=frame, raw=False)
    # pydicom refuses an invalid Number of Frames ('1A') before any override applies.
    full = header.ds if header.complete else _read_full(source)
    fixed = _with_frame_count(full, frame_count(full))
    return pixel_array(fixed, index=frame, raw=False, allow_excess_frames=False)


def _frames_valid(ds: Dataset) -> bool:
    value = ds.get("NumberOfFrames")
    return value is None or value == "" or (isinstance(value, int) and value >= 0)


def _read_full(source: Source) -> Dataset:
    if isinstance(source, str | os.PathLike):
        return dcmread(source, force=True)
    start = source.tell()
    try:
        return dcmread(source, force=True)
    finally:
        source.seek(start)


def _with_frame_count(ds: Dataset, count: int) -> Dataset:
    """A copy with a new element dict, so the caller's dataset is never modified."""
    fixed = Dataset(dict(ds))
    fixed.file_meta = ds.file_meta
    fixed["NumberOfFrames"] = DataElement(0x00280008, "IS", count)
    return fixed


# --- LUTs ----------------------------------------------------------------------------------


def _photometric(ds: Dataset) -> str:
    return str(ds.get("PhotometricInterpretation") or "").strip().upper()


def _modality_values(stored: np.ndarray, ds: Dataset, frame: int) -> np.ndarray:
    if _photometric(ds) == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return apply_color_lut(stored, ds)
    if stored.ndim == 3:  # already RGB
        return stored
    return _modality_lut(stored, ds, frame)


def _modality_lut(stored: np.ndarray, ds: Dataset, frame: int) -> np.ndarray:
    """(0028,3000) *Modality LUT Sequence*, else the linear rescale (float32 result)."""
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    slope, intercept = _rescale(ds, frame)
    values = stored.astype(np.float32)
    if slope != 1.0:
        values *= np.float32(slope)
    if intercept != 0.0:
        values += np.float32(intercept)
    return values


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    """(0028,1053) *Rescale Slope* and (0028,1052) *Rescale Intercept*, from the frame's
    (0028,9145) *Pixel Value Transformation Sequence* for enhanced multi-frame images."""
    item = _frame_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope = _first_float(item.get("RescaleSlope"))
    intercept = _first_float(item.get("RescaleIntercept"))
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _frame_item(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """The frame's item of a functional group: (5200,9230) *Per-Frame Functional Groups
    Sequence* first, then (5200,9229) *Shared Functional Groups Sequence*."""
    for groups_keyword, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(groups_keyword) or []
        if index < len(groups):
            sequence = groups[index].get(keyword) or []
            if sequence:
                return sequence[0]
    return None


def _window_item(ds: Dataset, frame: int) -> Dataset | None:
    for item in (_frame_item(ds, frame, "FrameVOILUTSequence"), ds):
        if item is not None and _window_of(item) is not None:
            return item
    return None


def _window_of(item: Dataset) -> tuple[float, float] | None:
    center = _first_float(item.get("WindowCenter"))
    width = _first_float(item.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center, width


def _display(values: np.ndarray, header: _Header, frame: int, window: Any) -> np.ndarray:
    """Modality values to 8-bit display values (gray 2-D or RGB 3-D)."""
    if values.ndim == 3:
        return _colour_8bit(values, header.ds)
    gray = _voi(values, header, frame, window)
    if _photometric(header.ds) == "MONOCHROME1":
        gray = 255.0 - gray
    return _to_uint8(gray)


def _voi(values: np.ndarray, header: _Header, frame: int, window: Any) -> np.ndarray:
    """VOI LUT (PS3.3 C.11.2): requested window, file window, VOI LUT Sequence, min/max."""
    ds = header.ds
    item = _window_item(ds, frame)
    function = str((item or ds).get("VOILUTFunction") or "LINEAR").strip().upper()
    if window is None and item is not None:
        window = _window_of(item)
    if window is None and ds.get("VOILUTSequence"):
        return _voi_lut_sequence(values, ds)
    if window is None:
        window, function = min_max_window(values), "LINEAR_EXACT"
    if header.pixel_keyword != "PixelData" and function == "LINEAR":
        # The -0.5/-1 terms of LINEAR assume integer stored values; float maps need EXACT.
        function = "LINEAR_EXACT"
    center, width = (float(v) for v in window)
    return window_apply(values, center, width, function)


def window_apply(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """(0028,1056) *VOI LUT Function* formulas of PS3.3 C.11.2.1.2 and C.11.2.1.3, 0..255."""
    if function == "SIGMOID":
        with np.errstate(over="ignore"):
            return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0) * 255.0
    if width <= 1.0:  # LINEAR with width 1 is a threshold at center - 0.5
        return np.where(values > center - 0.5, 255.0, 0.0)
    return np.clip((values - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0) * 255.0


def min_max_window(values: np.ndarray) -> tuple[float, float]:
    """A LINEAR_EXACT window spanning the frame; a flat frame renders black."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.5, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return low + 0.5, 1.0
    return (low + high) / 2.0, high - low


def _voi_lut_sequence(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """First item of (0028,3010) *VOI LUT Sequence*, scaled from the (0028,3002) *LUT
    Descriptor* bit depth to 0..255."""
    from pydicom.pixels import apply_voi

    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    indices = np.rint(np.nan_to_num(values)).astype(np.int64)
    mapped = apply_voi(indices, ds, index=0)
    return np.asarray(mapped, dtype=np.float32) * np.float32(255.0 / (2**bits - 1))


def _colour_8bit(rgb: np.ndarray, ds: Dataset) -> np.ndarray:
    """RGB to 8 bits: by (0028,0101) *Bits Stored*, or the full 16 bits of a palette."""
    if rgb.dtype == np.uint8:
        return rgb
    if _photometric(ds) == "PALETTE COLOR":
        full = 65535
    else:
        full = 2 ** (_int(ds.get("BitsStored")) or rgb.dtype.itemsize * 8) - 1
    return _to_uint8(rgb.astype(np.float32) * np.float32(255.0 / full))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)


# --- encoding ------------------------------------------------------------------------------


def _encode(
    pixels: np.ndarray, pil_format: str, size: tuple[int, int] | None, quality: int
) -> bytes:
    from PIL import Image

    image = _fit(Image.fromarray(np.ascontiguousarray(pixels)), size)
    options = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def _fit(image: Any, size: tuple[int, int] | None) -> Any:
    """Shrink to fit inside (max width, max height), keeping the aspect; never enlarge."""
    if size is None:
        return image
    scale = min(size[0] / image.width, size[1] / image.height)
    if scale >= 1.0:
        return image
    from PIL import Image

    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS)


# --- value parsing -------------------------------------------------------------------------


def _first_float(value: Any) -> float | None:
    """The first value of a DS/FD attribute as a finite float, or None."""
    if not isinstance(value, str | bytes) and isinstance(value, Sequence):
        value = value[0] if len(value) else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
