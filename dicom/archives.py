"""Safe expansion of uploaded ZIP archives into staging.

All-or-nothing: every member name is checked before anything is inflated (no absolute
paths, no ``..``, no symlinks, bounded member count), then members are inflated into
staging while the bytes *really* inflated are counted (not the sizes the headers claim),
so a ZIP bomb is stopped at the limit. If anything is refused, every staged member is
removed and :class:`UnsafeArchive` (or :class:`FileTooLarge`) is raised.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from dicom.errors import FileTooLarge, UnsafeArchive
from dicom.storage import StagedFile, staging_write

MSG_NOT_ZIP = "The file is not a valid ZIP archive."
MSG_TOO_MANY = "The archive holds more than {limit} members."
MSG_BAD_NAME = "The archive member {name!r} has an unsafe path."
MSG_SYMLINK = "The archive member {name!r} is a symbolic link."
MSG_TOO_BIG = "The archive inflates to more than {limit} bytes."
MSG_ENCRYPTED = "Encrypted archive members are not supported."
IGNORED_PREFIXES = ("__MACOSX/",)


def is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def archive_extract(source: Path | IO[bytes]) -> list[StagedFile]:
    """Inflate every regular member of a ZIP into staging; see the module docstring."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeArchive(MSG_NOT_ZIP) from exc
    with archive:
        members = _members_checked(archive)
        staged: list[StagedFile] = []
        budget = settings.LIGHTBOX_MAX_ZIP_TOTAL_BYTES
        try:
            for info in members:
                limit = min(settings.LIGHTBOX_MAX_FILE_BYTES, budget)
                with archive.open(info) as stream:
                    try:
                        item = staging_write(stream, filename=info.filename, max_bytes=limit)
                    except FileTooLarge:
                        if limit == budget:
                            raise UnsafeArchive(
                                MSG_TOO_BIG.format(limit=settings.LIGHTBOX_MAX_ZIP_TOTAL_BYTES)
                            ) from None
                        raise
                budget -= item.size
                staged.append(item)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            for item in staged:
                item.discard()
            raise UnsafeArchive(f"The archive could not be read: {type(exc).__name__}.") from exc
        except BaseException:
            for item in staged:
                item.discard()
            raise
    return staged


def _members_checked(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > settings.LIGHTBOX_MAX_ZIP_MEMBERS:
        raise UnsafeArchive(MSG_TOO_MANY.format(limit=settings.LIGHTBOX_MAX_ZIP_MEMBERS))
    members = []
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise UnsafeArchive(MSG_BAD_NAME.format(name=name[:200]))
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(MSG_SYMLINK.format(name=name[:200]))
        if info.flag_bits & 0x1:
            raise UnsafeArchive(MSG_ENCRYPTED)
        if info.is_dir() or name.startswith(IGNORED_PREFIXES):
            continue
        if PurePosixPath(name).name.startswith("."):
            continue
        members.append(info)
    return members


def _unsafe_name(name: str) -> bool:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return True
    return any(part == ".." for part in normalised.split("/")) or "\x00" in name
