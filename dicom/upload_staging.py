"""Multipart uploads written straight to staging while they are parsed.

Django's own upload handlers keep a file part in memory (up to
``FILE_UPLOAD_MAX_MEMORY_SIZE``) or in a temporary file; the ingest then copied it once
more into staging while hashing. Here each part goes to its staging file as it arrives,
hashed on the way: one write, no second copy, and memory bounded by one chunk whatever the
file's size. An upload over the size limit stops at the limit, and what it staged is removed.

A body that is one file (``Content-Type: application/dicom``, ``application/zip`` or
``application/octet-stream``) is staged the same way by :class:`StagingBodyParser` and reaches
the view as the single entry of ``files``.

Every staged part is removed when the request ends (Django closes uploaded files then), so a
request that fails before the ingest consumes its files leaves nothing in staging.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.parsers import BaseParser, DataAndFiles, MultiPartParser

from dicom.errors import LightboxError
from dicom.storage import StagedFile, staging_dir, staging_write, writeback_start

# Parts arrive in chunks of this size (Django's default is 64 kB): fewer trips through the
# multipart parser, still one bounded buffer at a time.
CHUNK = 256 * 1024
MSG_UPLOAD_TOO_BIG = "The upload holds more than {limit} bytes in total."


class StagedUpload(UploadedFile):
    """An uploaded file part that is already in staging."""

    def __init__(self, staged: StagedFile) -> None:
        super().__init__(file=None, name=staged.filename, size=staged.size)
        self.staged: StagedFile | None = staged

    def take(self) -> StagedFile:
        """The staged file, now the caller's to ingest or discard."""
        staged, self.staged = self.staged, None
        assert staged is not None, "a staged upload is taken once"
        return staged

    def close(self) -> None:  # called by Django when the request ends
        if self.staged is not None:  # never taken: the request failed before the ingest
            self.staged.discard()


class StagingUploadHandler(FileUploadHandler):
    """Streams every file part of a multipart body to its own staging file, hashing it.

    The parts together may hold ``max_bytes`` (``LIGHTBOX_MAX_UPLOAD_BYTES``); past that the
    upload stops with ``upload_too_large``, before another byte is written."""

    chunk_size = CHUNK

    def __init__(self, request: Any = None, *, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.LIGHTBOX_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
        self.staged: list[StagedFile] = []
        self.total = 0
        self._out: Any = None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        fd, name = tempfile.mkstemp(prefix="up-", suffix=".part", dir=staging_dir())
        self._out = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._size = 0
        self.staged.append(StagedFile(path=Path(name), sha256="", size=0))

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.total += len(raw_data)
        if self.total > self.max_bytes:
            raise LightboxError(
                MSG_UPLOAD_TOO_BIG.format(limit=self.max_bytes), code="upload_too_large"
            )
        self._size += len(raw_data)
        self._digest.update(raw_data)
        self._out.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StagedUpload:
        self._out.flush()
        writeback_start(self._out.fileno())
        self._out.close()
        staged = self.staged[-1]
        staged.sha256, staged.size = self._digest.hexdigest(), self._size
        staged.filename = self.file_name or "upload"
        return StagedUpload(staged)

    def discard_all(self) -> None:
        """Remove every file this handler staged (the upload failed part-way)."""
        if self._out is not None:
            self._out.close()
        for staged in self.staged:
            staged.discard()


class StagingMultiPartParser(MultiPartParser):
    """DRF's multipart parser with file parts streamed to staging (:class:`StagedUpload`)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = parser_context["request"]
        handler = StagingUploadHandler(request._request)
        request._request.upload_handlers = [handler]
        try:
            return super().parse(stream, media_type, parser_context)
        except BaseException:
            handler.discard_all()
            raise


class StagingBodyParser(BaseParser):
    """A request body that is one file, streamed to staging while hashed (one chunk in memory).

    The file is named by the ``X-File-Name`` header (else ``upload``) and is handed to the view
    as ``request.FILES["files"]``, exactly like a multipart upload of one file; whether it is
    a DICOM file or a ZIP archive is read from its bytes, not from the media type. (DRF never
    calls a parser for an empty body: the view answers ``no_files``.)"""

    media_type = "application/dicom"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = parser_context["request"]
        name = request.headers.get("X-File-Name", "").strip()[:255] or "upload"
        staged = staging_write(stream, filename=name, max_bytes=settings.LIGHTBOX_MAX_UPLOAD_BYTES)
        files = MultiValueDict({"files": [StagedUpload(staged)]})
        # DRF hands only form bodies' files to Django; Django closes (here: discards, if not
        # taken) the files it holds when the request ends.
        request._request._files = files
        return DataAndFiles(QueryDict(), files)


class StagingZipBodyParser(StagingBodyParser):
    media_type = "application/zip"


class StagingOctetBodyParser(StagingBodyParser):
    media_type = "application/octet-stream"


BODY_PARSERS = [StagingBodyParser, StagingZipBodyParser, StagingOctetBodyParser]
