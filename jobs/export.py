"""Exporting images as a ZIP (seed 004 ``POST /viewer/api/export/images/``).

Pictures come from :func:`dicom.previews.instance_render` (PNG/JPEG, the file's own
window) and arrays from :func:`dicom.rendering.frame_pixels` (NumPy ``.npy``, modality LUT
applied): the one renderer, never a second. A multi-frame image gives one file per frame.

ZIP layout::

    images/image-<id>.png            (or image-<id>-f0001.png ... per frame)
    metadata/image-<id>.json         (with include_metadata)
    index.csv                        one row per image (with include_metadata)
    errors.json                      images that could not be exported, if any

Small exports stream straight back; larger ones (``LIGHTBOX_EXPORT_SYNC_MAX_IMAGES`` /
``_FRAMES``) run as a job whose items each render one image into ``jobs/<id>/items/``;
the finaliser zips them into ``jobs/<id>/export.zip``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from dicom import selectors
from dicom.errors import LightboxError, NotFound
from dicom.models import Instance
from dicom.previews import instance_render, instance_source
from dicom.storage import staging_dir
from jobs.models import Job, JobItem
from jobs.services import ItemSpec, job_create, job_dir, job_enqueue, job_kind_register

logger = logging.getLogger(__name__)

KIND = "export"
FORMATS = ("png", "jpeg", "npy")
EXTENSIONS = {"png": "png", "jpeg": "jpg", "npy": "npy"}
CSV_COLUMNS = [
    "image_id",
    "sop_instance_uid",
    "series_instance_uid",
    "study_instance_uid",
    "modality",
    "instance_number",
    "rows",
    "columns",
    "frames",
    "files",
    "status",
    "error",
]

MSG_NO_IDS = "image_ids must be a non-empty list of image ids."
MSG_TOO_MANY = "At most {limit} images can be exported at once."
MSG_FORMAT = "format must be one of png, jpeg, npy."
MSG_MISSING = "Some images were not found: {ids}."


def export_request_check(*, user: Any, image_ids: Any, fmt: Any) -> tuple[list[Instance], str]:
    """Validate an export request: the visible instances in the order asked, and the format.
    One unknown or invisible id fails the request (404, like any image of another user)."""
    fmt = str(fmt or "png").lower().strip()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in FORMATS:
        raise LightboxError(MSG_FORMAT, code="bad_format")
    if not isinstance(image_ids, list) or not image_ids:
        raise LightboxError(MSG_NO_IDS, code="bad_image_ids")
    try:
        ids = list(dict.fromkeys(int(i) for i in image_ids if not isinstance(i, bool)))
    except (TypeError, ValueError):
        raise LightboxError(MSG_NO_IDS, code="bad_image_ids") from None
    limit = settings.LIGHTBOX_EXPORT_MAX_IMAGES
    if len(ids) > limit:
        raise LightboxError(MSG_TOO_MANY.format(limit=limit), code="too_many_images")
    found = {
        i.pk: i
        for i in selectors.instances_visible(user=user)
        .filter(pk__in=ids)
        .select_related("series__study")
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(MSG_MISSING.format(ids=", ".join(map(str, missing[:20]))))
    return [found[i] for i in ids], fmt


def export_is_small(instances: list[Instance]) -> bool:
    frames = sum(max(1, i.number_of_frames) for i in instances)
    return (
        len(instances) <= settings.LIGHTBOX_EXPORT_SYNC_MAX_IMAGES
        and frames <= settings.LIGHTBOX_EXPORT_SYNC_MAX_FRAMES
    )


# --- one image ----------------------------------------------------------------------------


def image_files(*, instance: Instance, fmt: str) -> Iterator[tuple[str, bytes]]:
    """(name in the ZIP, bytes) of every frame of one image, rendered one at a time."""
    frames = max(1, instance.number_of_frames)
    ext = EXTENSIONS[fmt]
    for frame in range(frames):
        suffix = f"-f{frame + 1:04d}" if frames > 1 else ""
        name = f"images/image-{instance.pk}{suffix}.{ext}"
        if fmt == "npy":
            yield name, _npy(instance, frame)
        else:
            yield name, instance_render(instance=instance, frame=frame, fmt=fmt)


def _npy(instance: Instance, frame: int) -> bytes:
    import numpy as np

    from dicom import rendering

    with instance_source(instance) as source:
        array = rendering.frame_pixels(source=source, frame=frame)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def image_metadata(instance: Instance, *, files: list[str]) -> dict[str, Any]:
    """What is known of one image, without patient identity (exports often leave the
    clinic): ids, UIDs, geometry, windowing and the files written for it."""
    series, study = instance.series, instance.series.study
    return {
        "image_id": instance.pk,
        "sop_instance_uid": instance.sop_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "series_instance_uid": series.series_instance_uid,
        "study_instance_uid": study.study_instance_uid,
        "modality": series.modality,
        "series_number": series.series_number,
        "series_description": series.series_description,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "instance_number": instance.instance_number,
        "rows": instance.rows,
        "columns": instance.columns,
        "frames": instance.number_of_frames,
        "photometric_interpretation": instance.photometric_interpretation,
        "bits_stored": instance.bits_stored,
        "pixel_spacing": (
            [instance.pixel_spacing_row, instance.pixel_spacing_column]
            if instance.pixel_spacing_row is not None
            else None
        ),
        "window_center": instance.window_center,
        "window_width": instance.window_width,
        "rescale_slope": instance.rescale_slope,
        "rescale_intercept": instance.rescale_intercept,
        "files": files,
    }


def _csv_row(meta: dict[str, Any] | None, image_id: Any, error: str = "") -> dict[str, Any]:
    meta = meta or {}
    row = {c: meta.get(c, "") for c in CSV_COLUMNS}
    row.update(
        image_id=image_id,
        files=";".join(meta.get("files", [])),
        status="error" if error else "ok",
        error=error,
    )
    return row


# --- a small export: streamed -----------------------------------------------------------------


class _ChunkSink:
    """A write-only, unseekable file for :class:`zipfile.ZipFile`: what is written is
    handed out by :meth:`drain`, so a ZIP can be streamed as it is built."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def export_stream(
    *, instances: list[Instance], fmt: str, include_metadata: bool
) -> Iterator[bytes]:
    """The ZIP of a small export, yielded piece by piece (one image held at a time)."""
    sink = _ChunkSink()
    rows, errors = [], []
    with zipfile.ZipFile(sink, "w") as archive:
        for instance in instances:
            try:
                names = []
                for name, data in image_files(instance=instance, fmt=fmt):
                    _zip_add(archive, name, data, fmt)
                    names.append(name)
                    yield sink.drain()
            except LightboxError as exc:
                errors.append({"image_id": instance.pk, **exc.payload()})
                rows.append(_csv_row(None, instance.pk, exc.message))
                continue
            meta = image_metadata(instance, files=names)
            rows.append(_csv_row(meta, instance.pk))
            if include_metadata:
                _zip_json(archive, f"metadata/image-{instance.pk}.json", meta)
        _zip_tail(archive, rows=rows, errors=errors, include_metadata=include_metadata)
    yield sink.drain()


def _zip_add(archive: zipfile.ZipFile, name: str, data: bytes, fmt: str) -> None:
    # PNG and JPEG are compressed already; arrays deflate well.
    method = zipfile.ZIP_DEFLATED if fmt == "npy" else zipfile.ZIP_STORED
    archive.writestr(name, data, compress_type=method)


def _zip_json(archive: zipfile.ZipFile, name: str, value: Any) -> None:
    archive.writestr(name, json.dumps(value, indent=2), compress_type=zipfile.ZIP_DEFLATED)


def _zip_tail(
    archive: zipfile.ZipFile, *, rows: list[dict], errors: list[dict], include_metadata: bool
) -> None:
    if include_metadata:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        archive.writestr("index.csv", text.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    if errors:
        _zip_json(archive, "errors.json", errors)


# --- a large export: a job --------------------------------------------------------------------


def export_job_create(
    *, owner: Any, instances: list[Instance], fmt: str, include_metadata: bool
) -> Job:
    job = job_create(
        kind=KIND,
        owner=owner,
        items=[ItemSpec(key=str(i.pk)) for i in instances],
        params={"format": fmt, "include_metadata": include_metadata},
    )
    job_enqueue(job=job)
    return job


def export_item_run(*, job: Job, item: JobItem) -> dict[str, Any]:
    """Render one image into the job's folder. Re-running overwrites the same names."""
    instance = (
        selectors.instances_visible(user=job.owner)
        .select_related("series__study")
        .filter(pk=int(item.key))
        .first()
    )
    if instance is None:
        raise NotFound("Image not found.")
    fmt = job.params.get("format", "png")
    stored = []
    for name, data in image_files(instance=instance, fmt=fmt):
        target = f"{job_dir(job.pk)}/items/{item.index:06d}/{name}"
        default_storage.delete(target)
        default_storage.save(target, io.BytesIO(data))
        stored.append([name, target])
    meta = image_metadata(instance, files=[name for name, _ in stored])
    return {"files": stored, "metadata": meta}


def export_finalize(*, job: Job) -> str:
    """Zip every item's files into ``jobs/<id>/export.zip`` and drop the item files."""
    include_metadata = bool(job.params.get("include_metadata"))
    fmt = job.params.get("format", "png")
    rows, errors = [], []
    with tempfile.TemporaryFile(dir=staging_dir()) as spool:
        with zipfile.ZipFile(spool, "w") as archive:
            for item in job.items.order_by("index").iterator(chunk_size=200):
                if item.status != JobItem.Status.DONE:
                    errors.append({"image_id": _int(item.key), **(item.error or {})})
                    rows.append(_csv_row(None, item.key, (item.error or {}).get("error", "")))
                    continue
                _files_add(archive, item.result.get("files", []), fmt)
                meta = item.result.get("metadata", {})
                rows.append(_csv_row(meta, item.key))
                if include_metadata:
                    _zip_json(archive, f"metadata/image-{item.key}.json", meta)
            _zip_tail(archive, rows=rows, errors=errors, include_metadata=include_metadata)
        spool.seek(0)
        name = f"{job_dir(job.pk)}/export.zip"
        default_storage.delete(name)
        stored = default_storage.save(name, File(spool, name="export.zip"))
    _item_files_delete(job)
    return stored


def _files_add(archive: zipfile.ZipFile, files: Iterable[list[str]], fmt: str) -> None:
    for arcname, storage_name in files:
        with default_storage.open(storage_name, "rb") as fh:
            _zip_add(archive, arcname, fh.read(), fmt)


def _item_files_delete(job: Job) -> None:
    for item in job.items.filter(status=JobItem.Status.DONE).only("result"):
        for _arcname, storage_name in item.result.get("files", []):
            try:
                default_storage.delete(storage_name)
            except OSError:
                logger.warning("could not delete export part job=%s", job.pk)


def _int(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value


job_kind_register(name=KIND, item_run=export_item_run, finalize=export_finalize)
