"""Helpers for the jobs tests: pictures made with Pillow and a one-shot worker run."""

from __future__ import annotations

import base64
import io

from django.core.management import call_command


def jpeg_bytes(*, width: int = 64, height: int = 48, color: tuple = (200, 30, 90)) -> bytes:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(picture).rectangle([4, 4, width // 2, height // 2], fill=(10, 220, 40))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def png_bytes(*, width: int = 40, height: int = 30, mode: str = "L") -> bytes:
    import numpy as np
    from PIL import Image

    if mode == "I;16":
        array = (np.arange(width * height, dtype=np.uint16) * 37).reshape(height, width)
        picture = Image.fromarray(array)
    elif mode == "L":
        array = (np.arange(width * height) % 251).astype(np.uint8).reshape(height, width)
        picture = Image.fromarray(array)
    else:
        array = (np.arange(width * height * 3) % 253).astype(np.uint8).reshape(height, width, 3)
        picture = Image.fromarray(array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def worker_drain() -> None:
    """Run every queued task with django-tasks-db's own worker loop, then return."""
    call_command(
        "db_worker", batch=True, reload=False, startup_delay=False, interval=0, verbosity=0
    )
