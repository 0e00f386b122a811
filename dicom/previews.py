"""Rendered images of stored instances, cached as derived files beside the original.

Every image that leaves Lightbox (preview, data URL, DICOMweb rendered/thumbnail, export)
comes from :func:`instance_render`, which calls the one renderer in
:mod:`dicom.rendering`. Renders with the file's own window are cached as
``final/{sha256}/render-f{frame}-{w}x{h}.{fmt}``; renders with a requested window are not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.files.storage import default_storage

from dicom.errors import LightboxError
from dicom.models import Instance
from dicom.storage import blob_local_path, blob_open, blob_put_bytes, derived_name

logger = logging.getLogger(__name__)

FORMATS = {"png", "jpeg", "gif", "webp"}
MAX_SIZE = 4096


@contextmanager
def instance_source(instance: Instance) -> Iterator[Any]:
    """The stored original as something the renderer reads: a path or an open file."""
    local = blob_local_path(instance.file_path)
    if local is not None:
        yield local
        return
    with blob_open(instance.file_path) as fh:
        yield fh


def render_format(value: str | None, default: str = "png") -> str:
    fmt = (value or default).lower().strip()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in FORMATS:
        raise LightboxError(
            f"Unknown image format {value!r}; use png, jpeg, gif or webp.", code="bad_format"
        )
    return fmt


def instance_render(
    *,
    instance: Instance,
    frame: int = 0,
    window: tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    fmt: str = "png",
    quality: int = 90,
) -> bytes:
    if not 0 <= frame < max(1, instance.number_of_frames):
        raise LightboxError(
            f"Frame {frame} is out of range; the image has {instance.number_of_frames} frame(s).",
            code="frame_out_of_range",
        )
    cacheable = window is None and quality == 90
    name = _cache_name(instance, frame, size, fmt)
    if cacheable and default_storage.exists(name):
        with blob_open(name) as fh:
            return fh.read()
    from dicom import rendering

    with instance_source(instance) as source:
        data = rendering.frame_render(
            source=source, frame=frame, window=window, size=size, fmt=fmt, quality=quality
        )
    if cacheable:
        try:
            blob_put_bytes(name, data)
        except OSError:
            logger.warning("could not cache render instance=%s", instance.pk)
    return data


def _cache_name(instance: Instance, frame: int, size: tuple[int, int] | None, fmt: str) -> str:
    w, h = size or (0, 0)
    return derived_name(instance.sha256, f"render-f{frame}-{w}x{h}.{fmt}")


def parse_size(value: str | None) -> tuple[int, int] | None:
    """``"256"`` or ``"256x192"`` → (width, height), bounded."""
    if not value:
        return None
    try:
        parts = [int(p) for p in value.lower().replace(",", "x").split("x")]
    except ValueError:
        raise LightboxError("size must look like 256 or 256x192.", code="bad_size") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(0 < p <= MAX_SIZE for p in parts):
        raise LightboxError(f"size must be between 1 and {MAX_SIZE}.", code="bad_size")
    return parts[0], parts[1]


def parse_window(center: str | None, width: str | None) -> tuple[float, float] | None:
    if center in (None, "") and width in (None, ""):
        return None
    try:
        c, w = float(center), float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LightboxError(
            "window_center and window_width must both be numbers.", code="bad_window"
        ) from None
    if w <= 0:
        raise LightboxError("window_width must be positive.", code="bad_window")
    return c, w
