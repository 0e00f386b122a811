"""Helpers for the jobs tests: pictures made with Pillow and a one-shot worker run."""

from __future__ import annotations

import base64
import io


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
    """Run every ready task through django-tasks-db's own ``Worker.run_task`` (claim, run,
    record the result), in this process and this test's transaction. The real
    ``db_worker``/``jobs_worker`` loop is exercised in subprocesses by test_processes.py;
    in-process it would close the test's database connection between tasks."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test",
        excluded_queue_names=[],
    )
    while (task := DBTaskResult.objects.ready().first()) is not None:
        task.claim("test")
        worker.run_task(task)
