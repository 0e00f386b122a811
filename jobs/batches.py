"""Batch uploads (seed 001): many files in, one job out.

The request is read as a stream: a JSON body ``{"files": [{"filename", "content"}]}`` is
parsed item by item (ijson) and each file is base64-decoded straight into staging; a
multipart upload is spooled to disk by Django. ZIP archives are expanded into one item per
member. Each staged file then waits in storage under ``jobs/<id>/input/`` until the
worker ingests it through :func:`dicom.ingest.staged_ingest` (the one pipeline), after
converting JPEG/PNG pictures to DICOM Secondary Capture.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from dicom.archives import archive_extract, is_zip
from dicom.conversion import ConversionInfo, image_convert, image_kind, uids_for
from dicom.errors import LightboxError
from dicom.ingest import staged_ingest
from dicom.storage import StagedFile, blob_local_path, blob_open, local_move, staging_write
from jobs.models import Job, JobItem
from jobs.services import ItemSpec, job_create, job_dir, job_enqueue, job_kind_register

logger = logging.getLogger(__name__)

KIND = "batch_upload"
DECODE_CHUNK = 4 * 1024 * 1024  # characters of base64, a multiple of 4

MSG_NO_FILES = (
    'Send a JSON body {"files": [{"filename", "content" (base64)}]} or a multipart '
    "upload with one or more files in the field 'files'."
)
MSG_BAD_JSON = "The body is not valid JSON: {reason}."
MSG_BAD_ITEM = "Each entry of 'files' must be an object with 'filename' and 'content'."
MSG_BAD_BASE64 = "The content of this file is not valid base64."
MSG_TOO_MANY = "The batch holds more than {limit} files."
MSG_TOO_BIG = "The batch holds more than {limit} bytes in total."
MSG_INPUT_GONE = "The uploaded file of this item is no longer available."


class BatchTooLarge(LightboxError):
    status = 413
    code = "batch_too_large"


def max_files() -> int:
    return int(getattr(settings, "LIGHTBOX_MAX_BATCH_FILES", 10_000))


class _Stager:
    """Collects the item specs of one batch while files are staged and stored."""

    def __init__(self, *, job_id: uuid.UUID, patient: dict[str, str]) -> None:
        self.job_id = job_id
        self.patient = {k: v for k, v in patient.items() if v}
        self.specs: list[ItemSpec] = []
        self.total_bytes = 0

    def add_stream(self, stream: IO[bytes], *, filename: str, params: dict[str, str]) -> None:
        try:
            staged = staging_write(
                stream, filename=filename, max_bytes=settings.LIGHTBOX_MAX_UPLOAD_BYTES
            )
        except LightboxError as exc:
            self.add_failed(filename, exc.payload())
            return
        self.add_staged(staged, params=params)

    def add_staged(self, staged: StagedFile, *, params: dict[str, str]) -> None:
        self.total_bytes += staged.size
        if self.total_bytes > settings.LIGHTBOX_MAX_UPLOAD_BYTES:
            staged.discard()
            raise BatchTooLarge(MSG_TOO_BIG.format(limit=settings.LIGHTBOX_MAX_UPLOAD_BYTES))
        if is_zip(staged.path):
            self._add_archive(staged, params=params)
            return
        if staged.size > settings.LIGHTBOX_MAX_FILE_BYTES:
            staged.discard()
            limit = settings.LIGHTBOX_MAX_FILE_BYTES
            self.add_failed(
                staged.filename,
                {
                    "error": f"The file is larger than the limit of {limit} bytes.",
                    "code": "file_too_large",
                },
            )
            return
        self._check_count()
        name = f"{job_dir(self.job_id)}/input/{len(self.specs):06d}"
        size = staged.size
        input_put(staged, name)
        self.specs.append(
            ItemSpec(
                key=staged.filename,
                input_name=name,
                input_size=size,
                params={**self.patient, **params},
            )
        )

    def _add_archive(self, staged: StagedFile, *, params: dict[str, str]) -> None:
        try:
            members = archive_extract(staged.path)
        except LightboxError as exc:
            self.add_failed(staged.filename, exc.payload())
            return
        finally:
            staged.discard()
        self.total_bytes -= staged.size  # counted again member by member
        for index, member in enumerate(members):
            member.filename = f"{staged.filename}/{member.filename}"
            try:
                self.add_staged(member, params=params)
            except BaseException:
                for rest in members[index + 1 :]:
                    rest.discard()
                raise

    def add_failed(self, filename: str, error: dict[str, Any]) -> None:
        self._check_count()
        self.specs.append(ItemSpec(key=filename, error=error))

    def _check_count(self) -> None:
        if len(self.specs) >= max_files():
            raise BatchTooLarge(MSG_TOO_MANY.format(limit=max_files()))

    def discard(self) -> None:
        for spec in self.specs:
            if spec.input_name:
                default_storage.delete(spec.input_name)


def input_put(staged: StagedFile, name: str) -> None:
    """Move a staged file into storage (a rename on a local disk)."""
    target = blob_local_path(name)
    if target is not None:
        local_move(staged.path, Path(target))
        return
    with staged.path.open("rb") as fh:
        default_storage.save(name, File(fh, name=Path(name).name))
    staged.discard()


# --- creation -----------------------------------------------------------------------------


def batch_create_from_json(*, stream: IO[bytes], owner: Any, patient: dict[str, str]) -> Job:
    """Parse ``{"files": [...]}`` from ``stream`` one file at a time."""
    import ijson

    stager = _Stager(job_id=uuid.uuid4(), patient=patient)
    try:
        for index, entry in enumerate(ijson.items(stream, "files.item")):
            _json_entry_add(stager, index, entry)
    except ijson.JSONError as exc:
        stager.discard()
        raise LightboxError(MSG_BAD_JSON.format(reason=str(exc)[:120]), code="bad_json") from None
    except BaseException:
        stager.discard()
        raise
    return _batch_create(stager=stager, owner=owner)


def _json_entry_add(stager: _Stager, index: int, entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        name = entry.get("filename") if isinstance(entry, dict) else None
        stager.add_failed(
            str(name or f"file-{index + 1}"), {"error": MSG_BAD_ITEM, "code": "bad_batch_entry"}
        )
        return
    filename = str(entry.get("filename") or f"file-{index + 1}")[:255]
    params = {
        key: str(entry[key])[:64]
        for key in ("patient_name", "patient_id")
        if isinstance(entry.get(key), str) and entry[key]
    }
    try:
        stream = Base64Reader(entry["content"])
        stager.add_stream(stream, filename=filename, params=params)
    except binascii.Error:
        stager.add_failed(filename, {"error": MSG_BAD_BASE64, "code": "bad_base64"})


def batch_create_from_uploads(*, uploads: list[Any], owner: Any, patient: dict[str, str]) -> Job:
    """A multipart batch: Django has spooled each file to disk already."""
    stager = _Stager(job_id=uuid.uuid4(), patient=patient)
    try:
        for upload in uploads:
            stager.add_stream(upload, filename=(upload.name or "upload")[:255], params={})
    except BaseException:
        stager.discard()
        raise
    return _batch_create(stager=stager, owner=owner)


def _batch_create(*, stager: _Stager, owner: Any) -> Job:
    if not stager.specs:
        raise LightboxError(MSG_NO_FILES, code="no_files")
    try:
        job = job_create(kind=KIND, owner=owner, items=stager.specs, job_id=stager.job_id)
        job_enqueue(job=job)
    except BaseException:
        stager.discard()
        raise
    return job


class Base64Reader:
    """A read-only stream of the bytes a base64 string encodes, decoded chunk by chunk
    (the decoded file is never held whole)."""

    def __init__(self, text: str) -> None:
        if any(ch in text[:1024] for ch in " \r\n\t") or any(ch in text for ch in "\r\n"):
            text = "".join(text.split())
        if text.startswith("data:") and "," in text[:256]:
            text = text.split(",", 1)[1]  # a data URL
        if len(text) % 4:
            raise binascii.Error("length")
        self.text, self.offset = text, 0

    def read(self, size: int = -1) -> bytes:
        if self.offset >= len(self.text):
            return b""
        step = DECODE_CHUNK if size is None or size < 0 else max(4, (size // 3 + 1) * 4)
        part = self.text[self.offset : self.offset + step]
        self.offset += len(part)
        return base64.b64decode(part, validate=True)


# --- the worker's side ----------------------------------------------------------------------


def batch_item_run(*, job: Job, item: JobItem) -> dict[str, Any]:
    """Ingest one file of a batch (converting a picture first). Runs inside the item's
    transaction: a re-run after a crash finds the same file as a duplicate of itself."""
    if not item.input_name:
        raise LightboxError(MSG_INPUT_GONE, code="input_missing")
    try:
        with blob_open(item.input_name) as fh:
            staged = staging_write(fh, filename=item.key)
    except FileNotFoundError:
        raise LightboxError(MSG_INPUT_GONE, code="input_missing") from None
    converted = image_kind(staged.path) is not None
    if converted:
        staged = image_convert(staged=staged, info=_conversion_info(job, item))
    result = staged_ingest(staged=staged, owner=job.owner, source="batch")
    instance = result.instance
    return {
        "status": result.status,
        "upload_id": instance.pk,
        "study_id": instance.series.study_id,
        "series_id": instance.series_id,
        "sop_instance_uid": instance.sop_instance_uid,
        "converted": converted,
    }


def _conversion_info(job: Job, item: JobItem) -> ConversionInfo:
    # Deterministic UIDs and time: every picture of a batch lands in one study, and a
    # re-run converts to the very same bytes.
    study_uid, series_uid, sop_uid = uids_for(seed=str(job.pk), instance=item.index)
    return ConversionInfo(
        patient_name=item.params.get("patient_name", ""),
        patient_id=item.params.get("patient_id", ""),
        study_description="Batch upload",
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        instance_number=item.index + 1,
        when=job.created_at,
    )


def batch_items(*, job: Job) -> Iterator[JobItem]:
    return job.items.order_by("index").iterator(chunk_size=500)


job_kind_register(name=KIND, item_run=batch_item_run)
