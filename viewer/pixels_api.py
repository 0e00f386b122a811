"""``/viewer/api/images/<id>/pixels/``: one frame's stored values for windowing in the browser.

The viewer fetches a frame once and applies window/level itself (PS3.3 C.11.2.1.2) on every
mouse move, instead of asking for a PNG per move. Values are after the Modality LUT
(Rescale Slope/Intercept), i.e. in modality units (HU for CT). Colour images have no
window: the viewer shows the server-rendered PNG for them instead.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicom import selectors
from dicom.errors import LightboxError
from dicom.models import Instance
from dicom.negotiation import JsonErrorsNegotiation
from dicom.previews import instance_source

logger = logging.getLogger(__name__)

MSG_BAD_FRAME = "frame must be an integer from 0 to {last}."
MSG_COLOUR = (
    "This image is in colour ({photometric}); it has no window to apply. "
    "Use /viewer/api/images/{pk}/preview/ instead."
)
INT16_MIN, INT16_MAX = -32768, 32767

PIXEL_HEADERS = {
    "X-Rows": "Rows (0028,0010)",
    "X-Columns": "Columns (0028,0011)",
    "X-Samples": "Samples per pixel (always 1: colour images are refused)",
    "X-Dtype": "`int16` or `float32`, little-endian",
    "X-Frame": "0-based frame index sent",
    "X-Frames": "Number of Frames (0028,0008)",
    "X-Window-Center": "Default window center (modality units)",
    "X-Window-Width": "Default window width",
    "X-Voi-Function": "VOI LUT Function (0028,1056): LINEAR, LINEAR_EXACT or SIGMOID",
    "X-Min": "Smallest value in the frame",
    "X-Max": "Largest value in the frame",
    "X-Photometric": "Photometric Interpretation (0028,0004): MONOCHROME1 is shown inverted",
}


class ColourImage(LightboxError):
    status = 415
    code = "colour_image"


def frame_param(*, raw: str | None, instance: Instance) -> int:
    last = max(1, instance.number_of_frames) - 1
    try:
        frame = int(raw) if raw not in (None, "") else 0
    except ValueError:
        raise LightboxError(MSG_BAD_FRAME.format(last=last), code="frame_out_of_range") from None
    if not 0 <= frame <= last:
        raise LightboxError(MSG_BAD_FRAME.format(last=last), code="frame_out_of_range")
    return frame


def pixels_encode(values: np.ndarray) -> tuple[bytes, str]:
    """Int16 when every value is an integer that fits, else Float32 (both little-endian)."""
    if values.size and np.issubdtype(values.dtype, np.integer):
        integral = True
    else:
        integral = (
            bool(values.size)
            and bool(np.all(np.isfinite(values)))
            and bool(np.all(values == np.round(values)))
        )
    if integral and values.min() >= INT16_MIN and values.max() <= INT16_MAX:
        return values.astype("<i2").tobytes(), "int16"
    return values.astype("<f4").tobytes(), "float32"


def frame_values(*, instance: Instance, frame: int) -> tuple[np.ndarray, dict[str, object]]:
    """The frame after the Modality LUT, and the VOI defaults the renderer would use."""
    import pydicom

    from dicom import rendering

    with instance_source(instance) as source:
        # Deferred reading parses the whole file (so the pixel element's keyword is known)
        # without loading any large value into memory.
        ds = pydicom.dcmread(source, defer_size=1024, force=True)
        if hasattr(source, "seek"):
            source.seek(0)
        values = np.asarray(rendering.frame_pixels(source=source, frame=frame))
    if values.ndim != 2:
        raise ColourImage(
            MSG_COLOUR.format(photometric=instance.photometric_interpretation, pk=instance.pk)
        )
    return values, voi_default(ds=ds, instance=instance, values=values, frame=frame)


def voi_default(
    *, ds: object, instance: Instance, values: np.ndarray, frame: int
) -> dict[str, object]:
    """The window and (0028,1056) *VOI LUT Function* the server render uses by default:
    the file's window (frame's Frame VOI LUT first), else the frame's min/max with
    LINEAR_EXACT. Float pixel data always uses LINEAR_EXACT."""
    from dicom import rendering

    window = rendering.window_default(ds, frame)  # type: ignore[arg-type]
    function = str(getattr(ds, "VOILUTFunction", "") or "LINEAR").strip().upper()
    if window is None:
        window, function = rendering.min_max_window(values), "LINEAR_EXACT"
    float_data = any(key in ds for key in ("FloatPixelData", "DoubleFloatPixelData"))  # type: ignore[operator]
    if float_data and function == "LINEAR":
        function = "LINEAR_EXACT"
    if function not in {"LINEAR", "LINEAR_EXACT", "SIGMOID"}:
        function = "LINEAR"
    return {"center": float(window[0]), "width": float(window[1]), "function": function}


class ImagePixelsView(APIView):
    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        operation_id="viewer_image_pixels",
        parameters=[OpenApiParameter("frame", int, description="0-based frame index (default 0)")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Raw little-endian values, row by row. Headers: "
                + "; ".join(f"`{k}`: {v}" for k, v in PIXEL_HEADERS.items()),
            ),
            404: OpenApiTypes.OBJECT,
            415: OpenApiResponse(OpenApiTypes.OBJECT, description="Colour image: use preview"),
            422: OpenApiResponse(OpenApiTypes.OBJECT, description="Pixel data undecodable"),
        },
        description=(
            "One frame's stored values after the Modality LUT (HU for CT), for window/level "
            "in the browser. Int16 when the values are integers that fit, else Float32."
        ),
    )
    def get(self, request: Request, image_id: int) -> HttpResponse:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        frame = frame_param(raw=request.query_params.get("frame"), instance=instance)
        values, voi = frame_values(instance=instance, frame=frame)
        body, dtype = pixels_encode(values)
        response = HttpResponse(body, content_type="application/octet-stream")
        headers = {
            "X-Rows": values.shape[0],
            "X-Columns": values.shape[1],
            "X-Samples": 1,
            "X-Dtype": dtype,
            "X-Frame": frame,
            "X-Frames": max(1, instance.number_of_frames),
            "X-Window-Center": _num(voi["center"]),
            "X-Window-Width": _num(voi["width"]),
            "X-Voi-Function": voi["function"],
            "X-Min": _num(float(np.min(values))) if values.size else "0",
            "X-Max": _num(float(np.max(values))) if values.size else "0",
            "X-Photometric": instance.photometric_interpretation or "MONOCHROME2",
        }
        for name, value in headers.items():
            response[name] = str(value)
        response["Access-Control-Expose-Headers"] = ", ".join(headers)
        response["Cache-Control"] = "private, max-age=3600"
        logger.debug("pixels image=%s frame=%s dtype=%s", instance.pk, frame, dtype)
        return response


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


# --- the DICOM data dictionary, for the metadata panel ------------------------------------


@lru_cache(maxsize=1)
def dictionary_names() -> dict[str, str]:
    """``{"00100010": "Patient's Name", ...}`` for every public tag pydicom knows."""
    from pydicom.datadict import DicomDictionary

    return {f"{tag:08X}": entry[2] for tag, entry in DicomDictionary.items()}


class DictionaryView(APIView):
    @extend_schema(
        operation_id="viewer_dicom_dictionary",
        responses={200: OpenApiTypes.OBJECT},
        description="Tag → attribute name for the public DICOM data dictionary (metadata panel).",
    )
    def get(self, request: Request) -> Response:
        response = Response(dictionary_names())
        response["Cache-Control"] = "private, max-age=86400"
        return response
