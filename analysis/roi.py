"""Region-of-interest statistics in modality units and real area.

Coordinates are image coordinates: ``x`` is the column, ``y`` the row, and pixel (row r,
column c) has its centre at (x=c, y=r). A pixel belongs to the ROI when its centre does:

* rectangle ``{x, y, width, height}``: ``x <= c < x + width`` and ``y <= r < y + height``
  (for integers, exactly ``values[y:y+height, x:x+width]``);
* ellipse ``{cx, cy, rx, ry}``: ``((c - cx) / rx)² + ((r - cy) / ry)² <= 1``;
* polygon ``{points: [[x, y], ...]}``: the centre is inside the polygon
  (:func:`skimage.draw.polygon2mask`).

Area = pixel count * (0028,0030) row spacing * column spacing (mm²), or the pixel count in
px² when the file has no Pixel Spacing (``spacing_available: false``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.errors import BadAnalysisParameter, UnsupportedImage
from analysis.params import param_integer, params_check
from analysis.pixels import Frame

PARAMETERS = ("bins",)
BINS_DEFAULT = 32
MAX_POLYGON_POINTS = 10_000
MSG_ROI = (
    "Send 'roi' as {type: rectangle, x, y, width, height}, {type: ellipse, cx, cy, rx, ry} "
    "or {type: polygon, points: [[x, y], ...]} in image coordinates."
)
MSG_EMPTY = "The ROI holds no pixel of the image."
MSG_COLOUR = "ROI statistics need a monochrome image; this one is colour."


def roi_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    params_check(parameters, allowed=PARAMETERS)
    return {"bins": param_integer(parameters, "bins", default=BINS_DEFAULT, low=1, high=1024)}


def roi_mask(*, roi: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies in ``roi`` (see the module docstring)."""
    if not isinstance(roi, dict):
        raise BadAnalysisParameter(MSG_ROI, code="bad_roi")
    kind = roi.get("type")
    if kind == "rectangle":
        return _rectangle(roi, shape)
    if kind == "ellipse":
        return _ellipse(roi, shape)
    if kind == "polygon":
        return _polygon(roi, shape)
    raise BadAnalysisParameter(MSG_ROI, code="bad_roi")


def _numbers(roi: dict[str, Any], *names: str) -> list[float]:
    values = [roi.get(name) for name in names]
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise BadAnalysisParameter(MSG_ROI, code="bad_roi")
    return [float(v) for v in values]  # type: ignore[arg-type]


def _rectangle(roi: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    x, y, width, height = _numbers(roi, "x", "y", "width", "height")
    if width <= 0 or height <= 0:
        raise BadAnalysisParameter(
            "The rectangle needs a positive width and height.", code="bad_roi"
        )
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    return (columns >= x) & (columns < x + width) & (rows >= y) & (rows < y + height)


def _ellipse(roi: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    cx, cy, rx, ry = _numbers(roi, "cx", "cy", "rx", "ry")
    if rx <= 0 or ry <= 0:
        raise BadAnalysisParameter("The ellipse needs positive radii rx and ry.", code="bad_roi")
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    return ((columns - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1.0


def _polygon(roi: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    points = roi.get("points")
    if not isinstance(points, list) or not 3 <= len(points) <= MAX_POLYGON_POINTS:
        raise BadAnalysisParameter(
            f"A polygon needs 3 to {MAX_POLYGON_POINTS} points [x, y].", code="bad_roi"
        )
    vertices = []
    for point in points:
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise BadAnalysisParameter(MSG_ROI, code="bad_roi")
        x, y = _numbers({"x": point[0], "y": point[1]}, "x", "y")
        vertices.append((y, x))
    from skimage.draw import polygon2mask

    return polygon2mask(shape, np.asarray(vertices, dtype=np.float64))


def roi_run(*, frame: Frame, roi: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    if frame.colour:
        raise UnsupportedImage(MSG_COLOUR)
    mask = roi_mask(roi=roi, shape=frame.values.shape)
    inside = frame.values[mask].astype(np.float64)
    if inside.size == 0:
        raise BadAnalysisParameter(MSG_EMPTY, code="empty_roi")
    counts, edges = np.histogram(inside, bins=parameters["bins"])
    return {
        "roi": roi,
        "pixel_count": int(inside.size),
        **area_summary(count=int(inside.size), spacing=frame.spacing),
        "units": frame.units,
        "mean": float(inside.mean()),
        "std": float(inside.std()),
        "min": float(inside.min()),
        "max": float(inside.max()),
        "median": float(np.median(inside)),
        "histogram": {"counts": counts.tolist(), "bin_edges": edges.tolist()},
        "bbox": mask_bbox(mask),
    }


def area_summary(*, count: int, spacing: tuple[float, float] | None) -> dict[str, Any]:
    if spacing is None:
        return {
            "area": float(count),
            "area_unit": "px²",
            "spacing_available": False,
            "pixel_spacing": None,
        }
    row, column = spacing
    return {
        "area": count * row * column,
        "area_unit": "mm²",
        "spacing_available": True,
        "pixel_spacing": [row, column],
    }


def mask_bbox(mask: np.ndarray) -> list[int]:
    """[x, y, width, height] of the true pixels of ``mask``."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [
        int(columns[0]),
        int(rows[0]),
        int(columns[-1] - columns[0] + 1),
        int(rows[-1] - rows[0] + 1),
    ]
