"""One frame of a stored image as numbers, for analysis.

Pixels come from the one renderer's decoder (:func:`dicom.rendering.frame_pixels`): values
after the Modality LUT, so HU for CT. Analyses work on these numbers, never on a rendered
PNG. Colour frames are reduced to luminance (ITU-R BT.601 weights) and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.errors import BadAnalysisParameter, UnsupportedImage
from dicom.models import Instance
from dicom.previews import instance_source

LUMA = (0.299, 0.587, 0.114)
MSG_FRAME = "Frame {frame} is out of range; the image has {count} frame(s)."
MSG_NO_PIXELS = "This image has no pixel data to analyse."


@dataclass(frozen=True)
class Frame:
    values: np.ndarray  # 2-D float64, modality units (luminance for colour frames)
    frame: int
    window: tuple[float, float]  # (center, width) for display
    window_source: str  # "request", "file" or "min_max"
    spacing: tuple[float, float] | None  # (0028,0030) Pixel Spacing: (row, column) in mm
    units: str
    colour: bool
    monochrome1: bool
    modality: str


def frame_load(
    *, instance: Instance, frame: int = 0, window: tuple[float, float] | None = None
) -> Frame:
    """Decode one frame of ``instance`` (0-based). Raises a domain error when impossible."""
    if not instance.has_pixel_data:
        raise UnsupportedImage(MSG_NO_PIXELS)
    count = max(1, instance.number_of_frames)
    if not 0 <= frame < count:
        raise BadAnalysisParameter(
            MSG_FRAME.format(frame=frame, count=count), code="frame_out_of_range"
        )
    from dicom import rendering

    with instance_source(instance) as source:
        file_window = rendering.window_default(_header(source), frame)
        raw = np.asarray(rendering.frame_pixels(source=source, frame=frame))
    colour = raw.ndim == 3
    values = np.nan_to_num(_luminance(raw) if colour else raw.astype(np.float64))
    chosen, origin = _window(values, window, file_window)
    return Frame(
        values=values,
        frame=frame,
        window=chosen,
        window_source=origin,
        spacing=pixel_spacing(instance),
        units=modality_units(instance),
        colour=colour,
        monochrome1=instance.photometric_interpretation.strip().upper() == "MONOCHROME1",
        modality=instance.series.modality,
    )


def _header(source: Any) -> Any:
    import pydicom

    ds = pydicom.dcmread(source, stop_before_pixels=True, force=True)
    if hasattr(source, "seek"):
        source.seek(0)
    return ds


def _luminance(rgb: np.ndarray) -> np.ndarray:
    weights = np.asarray(LUMA, dtype=np.float64)
    return rgb[..., :3].astype(np.float64) @ weights


def _window(
    values: np.ndarray,
    requested: tuple[float, float] | None,
    from_file: tuple[float, float] | None,
) -> tuple[tuple[float, float], str]:
    if requested is not None:
        return requested, "request"
    if from_file is not None:
        return (float(from_file[0]), float(from_file[1])), "file"
    low, high = float(values.min()), float(values.max())
    return ((low + high) / 2.0, max(high - low, 1.0)), "min_max"


def pixel_spacing(instance: Instance) -> tuple[float, float] | None:
    """(0028,0030) *Pixel Spacing* as (row spacing, column spacing) = (y, x) in mm."""
    row, column = instance.pixel_spacing_row, instance.pixel_spacing_column
    if not row or not column or row <= 0 or column <= 0:
        return None
    return float(row), float(column)


def modality_units(instance: Instance) -> str:
    """HU for CT; otherwise (0028,1054) *Rescale Type* when the file states it."""
    if instance.series.modality.upper() == "CT":
        return "HU"
    element = instance.header.get("00281054") or {}
    value = (element.get("Value") or [""])[0]
    return str(value).strip() or "modality units"


def window_unit(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The linear VOI function of PS3.3 C.11.2.1.2.1 (the renderer's), scaled to 0..1."""
    from dicom import rendering

    return rendering.window_apply(values, center, width, "LINEAR") / 255.0
