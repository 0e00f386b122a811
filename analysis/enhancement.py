"""Contrast-limited adaptive histogram equalisation (CLAHE) of the windowed image.

The frame's modality values are windowed with the linear VOI function (the file's window,
or the one requested), inverted for MONOCHROME1, and equalised with
:func:`skimage.exposure.equalize_adapthist`. The image keeps its size.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from analysis.params import param_integer, param_number, param_window, params_check
from analysis.pixels import Frame, window_unit

PARAMETERS = ("clip_limit", "kernel_size", "nbins", "window_center", "window_width")
CLIP_LIMIT_DEFAULT = 0.01
NBINS_DEFAULT = 256


def enhancement_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters to use, defaults filled in; raises on anything invalid."""
    params_check(parameters, allowed=PARAMETERS)
    kernel = parameters.get("kernel_size")
    used: dict[str, Any] = {
        "clip_limit": param_number(
            parameters, "clip_limit", default=CLIP_LIMIT_DEFAULT, low=1e-4, high=1.0
        ),
        "nbins": param_integer(parameters, "nbins", default=NBINS_DEFAULT, low=16, high=65536),
        "kernel_size": None
        if kernel is None
        else param_integer(parameters, "kernel_size", default=0, low=4, high=4096),
    }
    window = param_window(parameters)
    if window is not None:
        used["window_center"], used["window_width"] = window
    return used


def enhancement_run(*, frame: Frame, parameters: dict[str, Any]) -> dict[str, Any]:
    """CLAHE of ``frame`` (already loaded with the requested window, if any)."""
    center, width = frame.window
    windowed = window_unit(frame.values, center, width)
    if frame.monochrome1:
        windowed = 1.0 - windowed
    from skimage.exposure import equalize_adapthist

    rows, columns = windowed.shape
    kernel = parameters["kernel_size"] or max(8, min(rows, columns) // 8)
    enhanced = equalize_adapthist(
        windowed,
        kernel_size=min(kernel, rows, columns),
        clip_limit=parameters["clip_limit"],
        nbins=parameters["nbins"],
    )
    return {
        "enhanced_image": png_data_url(enhanced),
        "enhancement_type": "clahe",
        "width": int(columns),
        "height": int(rows),
        "kernel_size_used": int(min(kernel, rows, columns)),
        "window": {"center": center, "width": width, "source": frame.window_source},
        "contrast_before": contrast_summary(windowed),
        "contrast_after": contrast_summary(enhanced),
        "converted_from_colour": frame.colour,
    }


def contrast_summary(image: np.ndarray) -> dict[str, float]:
    """RMS contrast (standard deviation) and 2-98 percentile spread of a 0..1 image."""
    p2, p98 = np.percentile(image, [2, 98])
    return {"rms": round(float(image.std()), 6), "p2_p98_spread": round(float(p98 - p2), 6)}


def png_data_url(image: np.ndarray) -> str:
    from PIL import Image

    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
