"""Where DICOM files live.

Uploads are streamed to a local *staging* folder while hashed; accepted files then go to
the default storage (file system or S3, chosen by settings) under the content address
``final/{sha256}/original.dcm``, with derived files (previews, thumbnails) beside it.
Readers open stored files through :func:`blob_open` only, so that storage backends (and
encryption at rest, later) stay transparent.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from dicom import encryption
from dicom.errors import FileTooLarge

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
ORIGINAL_NAME = "original.dcm"


@dataclass
class StagedFile:
    """A file in staging: its local path, SHA-256 and size. Delete it with :meth:`discard`."""

    path: Path
    sha256: str
    size: int
    filename: str = ""

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def staging_dir() -> Path:
    path = Path(settings.LIGHTBOX_STAGING_DIR)
    if not path.is_dir():  # a stat: a mkdir of an existing folder costs 0.2 ms on some disks
        path.mkdir(parents=True, exist_ok=True)
    return path


def staging_write(
    stream: IO[bytes], *, filename: str = "", max_bytes: int | None = None
) -> StagedFile:
    """Copy ``stream`` to a new staging file chunk by chunk, hashing as it goes.

    Never holds more than one chunk in memory. Raises :class:`FileTooLarge` (and leaves
    nothing behind) once more than ``max_bytes`` have been read.
    """
    limit = settings.LIGHTBOX_MAX_FILE_BYTES if max_bytes is None else max_bytes
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="up-", suffix=".part", dir=staging_dir())
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise file_too_large(limit)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            writeback_start(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return StagedFile(path=Path(name), sha256=digest.hexdigest(), size=size, filename=filename)


# Linux's sync_file_range(2), when the C library has it (a no-op elsewhere).
SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def writeback_start(fd: int) -> None:
    """Have the kernel start writing a just-staged file to disk, without waiting for it.

    With ``LIGHTBOX_FSYNC`` every stored original is flushed before its row commits
    (:func:`local_move`); started here, as soon as the upload is staged, the disk writes
    while the header is read and checked, and that flush then mostly finds the work done.
    """
    if settings.LIGHTBOX_FSYNC and _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # ctypes releases the GIL


def file_too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(f"The file is larger than the limit of {limit} bytes.", limit=limit)


def staging_cleanup(*, older_than_seconds: int = 3600) -> int:
    """Remove staging leftovers of crashed processes. Returns how many were removed."""
    removed = 0
    cutoff = time.time() - older_than_seconds
    for path in staging_dir().glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def original_name(sha256: str) -> str:
    return f"final/{sha256}/{ORIGINAL_NAME}"


def derived_name(sha256: str, filename: str) -> str:
    return f"final/{sha256}/{filename}"


def blob_put_staged(staged: StagedFile) -> str:
    """Store a staged file at its content address and return the storage name.

    Identical content has an identical name, so writing it twice is harmless. On a local
    disk the staged file is moved, not copied (it is not read again afterwards).
    """
    name = original_name(staged.sha256)
    if encryption.enabled():
        with staged.path.open("rb") as src, tempfile.TemporaryFile(dir=staging_dir()) as enc:
            encryption.encrypt_stream(src, enc)
            enc.seek(0)
            _put_stream(name, enc, durable=True)
        return name
    if _is_local_storage():
        local_move(staged.path, Path(default_storage.path(name)))
        return name
    with staged.path.open("rb") as fh:
        return default_storage.save(name, File(fh, name=ORIGINAL_NAME))


def blob_put_keeps_name() -> bool:
    """True when :func:`blob_put_staged` of content already stored overwrites it under the
    same name (a local disk): putting a duplicate then leaves nothing behind. Object
    storage may pick another name for an existing one."""
    return _is_local_storage()


def local_move(source: Path, target: Path) -> None:
    """Move a staged file to ``target`` in local storage: a rename when both are on one file
    system, else a copy that appears whole (written beside the target, then renamed). The
    file gets the storage's permissions (staging files are private: mkstemp's 0600).

    With ``LIGHTBOX_FSYNC`` the file's bytes and the folder entries that name it are on disk
    when this returns (the ingest commits the instance's row afterwards)."""
    new_folder = not target.parent.is_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    if settings.LIGHTBOX_FSYNC:
        _fsync(source)
    try:
        os.replace(source, target)
    except OSError:  # another file system
        with source.open("rb") as fh:
            _write_whole(target, fh, durable=True)
        source.unlink(missing_ok=True)
    mode = getattr(default_storage, "file_permissions_mode", None)
    if mode is not None:
        os.chmod(target, mode)
    if settings.LIGHTBOX_FSYNC:
        _fsync_entries(target, new_folder=new_folder)


def _put_stream(name: str, fh: IO[bytes], *, durable: bool = False) -> None:
    """Write a stream at ``name`` (atomically on a local disk; ``durable``: on disk, as
    :func:`local_move`, for originals rather than cached renders)."""
    if _is_local_storage():
        target = Path(default_storage.path(name))
        new_folder = not target.parent.is_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_whole(target, fh, durable=durable)
        if durable and settings.LIGHTBOX_FSYNC:
            _fsync_entries(target, new_folder=new_folder)
    else:
        default_storage.save(name, File(fh, name=name.rsplit("/", 1)[-1]))


def _write_whole(target: Path, fh: IO[bytes], *, durable: bool = False) -> None:
    """Write ``fh`` beside ``target``, then rename it into place: readers never see a
    partial file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    with tmp.open("wb") as out:
        shutil.copyfileobj(fh, out, CHUNK)
        if durable and settings.LIGHTBOX_FSYNC:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, target)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') changes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_entries(target: Path, *, new_folder: bool) -> None:
    """Flush the folder entry of ``target``, and that of its folder when it was new."""
    _fsync(target.parent)
    if new_folder:
        _fsync(target.parent.parent)


def blob_put_bytes(name: str, data: bytes) -> None:
    """Store a derived file (a cached render); encrypted like originals when enabled."""
    import io

    if encryption.enabled():
        enc = io.BytesIO()
        encryption.encrypt_stream(io.BytesIO(data), enc)
        data = enc.getvalue()
    _put_stream(name, io.BytesIO(data))


def blob_delete_tree(sha256: str) -> None:
    """Delete the original and every derived file of one content address."""
    prefix = f"final/{sha256}"
    try:
        _dirs, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for filename in files:
        default_storage.delete(f"{prefix}/{filename}")
    if _is_local_storage():
        try:
            os.rmdir(default_storage.path(prefix))
        except OSError:
            pass


def blob_exists(name: str) -> bool:
    return default_storage.exists(name)


@contextmanager
def blob_open(name: str) -> Iterator[BinaryIO]:
    """Open a stored file for reading (seekable, plaintext), whatever the storage backend
    and whether or not it is encrypted at rest."""
    fh = blob_reader(name)
    try:
        yield fh
    finally:
        fh.close()


def blob_reader(name: str) -> BinaryIO:
    """An open stored file (plaintext); the caller (often a streaming response) closes it."""
    fh = default_storage.open(name, "rb")
    if not encryption.is_encrypted(fh):
        return fh  # type: ignore[return-value]
    try:
        return encryption.decrypted_copy(fh)
    finally:
        fh.close()


def blob_local_path(name: str) -> str | None:
    """The file-system path of a stored file, when it is local and stored in plaintext
    (readers then open it themselves; otherwise they go through :func:`blob_open`)."""
    if _is_local_storage() and not encryption.enabled():
        return default_storage.path(name)
    return None


def _is_local_storage() -> bool:
    try:
        default_storage.path("x")
    except NotImplementedError:
        return False
    return True
