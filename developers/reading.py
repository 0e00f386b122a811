"""The stateless read API behind ``POST /api/dicom/read/file/`` (seed 003).

An uploaded DICOM file (or every DICOM member of a ZIP) comes back as its attributes,
keyword → string (as seed 003 shows them: ``str`` of the value, sequences as their items'
element lines), plus every frame rendered by the one renderer and base64-encoded. Binary
values (OB/OW/OD/OF/OL/OV/UN, pixel data) are never dumped: they read
``"<bulk data: N bytes>"``.

Nothing is kept: the upload is staged (and ZIPs expanded) in the staging folder only for
the duration of the call and always removed, even on errors; no row is written.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import IO, Any

import pydicom
from django.conf import settings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dicom import ingest
from dicom.archives import archive_extract, is_zip
from dicom.errors import InvalidDicomFile, LightboxError
from dicom.storage import StagedFile, file_too_large, staging_write

logger = logging.getLogger(__name__)

READ_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "gif": "GIF"}
BULK_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW", "US or OW"})
PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
UNDEFINED_LENGTH = 0xFFFFFFFF
MAX_FIELDS = 200

MSG_BAD_FORMAT = "Unknown return_format {value!r}: use png, jpeg or gif."
MSG_UNKNOWN_FIELDS = "Unknown DICOM keyword(s) in fields: {names}."
MSG_TOO_MANY_FIELDS = "At most {limit} fields may be requested."
MSG_NO_MEMBERS = "The archive holds no DICOM file."


class ReadError(LightboxError):
    code = "bad_read_request"


def read_format(value: str | None) -> str:
    """``return_format`` → the renderer's format name; png by default."""
    fmt = (value or "png").strip().lower()
    if fmt not in READ_FORMATS:
        raise ReadError(MSG_BAD_FORMAT.format(value=value), code="bad_format")
    return "jpeg" if fmt == "jpg" else fmt


def read_fields(value: str | None) -> list[str] | None:
    """``fields`` (comma-separated keywords) → a de-duplicated list, or None for all."""
    names = list(dict.fromkeys(n.strip() for n in (value or "").split(",") if n.strip()))
    if not names:
        return None
    if len(names) > MAX_FIELDS:
        raise ReadError(MSG_TOO_MANY_FIELDS.format(limit=MAX_FIELDS), code="bad_fields")
    unknown = [n for n in names if tag_for_keyword(n) is None]
    if unknown:
        raise ReadError(
            MSG_UNKNOWN_FIELDS.format(names=", ".join(n[:64] for n in unknown[:20])),
            code="unknown_field",
            fields=unknown[:20],
        )
    return names


def upload_read(
    *, stream: IO[bytes], filename: str, fields: list[str] | None, fmt: str
) -> dict[str, Any] | list[dict[str, Any]]:
    """One object for a DICOM file, a list (one per DICOM member) for a ZIP."""
    staged = staging_write(stream, filename=filename, max_bytes=settings.LIGHTBOX_MAX_UPLOAD_BYTES)
    try:
        if is_zip(staged.path):
            return _archive_read(staged, fields=fields, fmt=fmt)
        if staged.size > settings.LIGHTBOX_MAX_FILE_BYTES:
            raise file_too_large(settings.LIGHTBOX_MAX_FILE_BYTES)
        return staged_read(staged=staged, fields=fields, fmt=fmt)
    finally:
        staged.discard()


def _archive_read(staged: StagedFile, *, fields: list[str] | None, fmt: str) -> list[dict]:
    members = archive_extract(staged.path)
    results: list[dict[str, Any]] = []
    try:
        for member in members:
            try:
                results.append(
                    {
                        "FileName": member.filename,
                        **staged_read(staged=member, fields=fields, fmt=fmt),
                    }
                )
            except InvalidDicomFile:
                continue  # README.txt and friends: not DICOM members
            except LightboxError as exc:
                results.append({"FileName": member.filename, **exc.payload()})
            finally:
                member.discard()
    finally:
        for member in members:
            member.discard()
    if not results:
        raise InvalidDicomFile(MSG_NO_MEMBERS)
    return results


def staged_read(*, staged: StagedFile, fields: list[str] | None, fmt: str) -> dict[str, Any]:
    """Attributes, ``ImageFormat`` and ``Images`` of one staged file; raises the parser's
    domain errors or the renderer's."""
    ds = header_parse(staged)
    pixel_lengths = _pixel_lengths(staged.path)
    body = _attributes(ds, fields=fields, pixel_lengths=pixel_lengths)
    body["ImageFormat"] = READ_FORMATS[fmt]
    body["Images"] = _frames(staged.path, ds, fmt) if pixel_lengths else []
    return body


def header_parse(staged: StagedFile) -> Dataset:
    """The header without pixel data, with every hostile-input check of the ingest
    pipeline but without the UIDs the archive needs to *store* a file."""
    return ingest.header_read(staged, require_uids=False)


def _attributes(
    ds: Dataset, *, fields: list[str] | None, pixel_lengths: dict[str, int]
) -> dict[str, str]:
    if fields is None:
        out = {e.keyword: element_text(e) for e in ds if e.keyword and not e.tag.is_private}
        out.update({k: bulk_text(n) for k, n in pixel_lengths.items()})
        return out
    out = {}
    meta = getattr(ds, "file_meta", None) or Dataset()
    for name in fields:
        if name in pixel_lengths:
            out[name] = bulk_text(pixel_lengths[name])
        elif name in ds:
            out[name] = element_text(ds[name])
        elif name in meta:
            out[name] = element_text(meta[name])
    return out


def element_text(elem: DataElement) -> str:
    """One attribute's value as seed 003 shows it, bulk data replaced by its size."""
    if elem.VR == "SQ":
        return "[" + ", ".join(dataset_text(item) for item in elem.value) + "]"
    if _is_bulk(elem):
        return bulk_text(len(elem.value or b""))
    return str(elem.value)


def dataset_text(ds: Dataset) -> str:
    """A sequence item as pydicom's element lines: ``(gggg,eeee) Name  VR: value``."""
    lines = []
    for elem in ds:
        if elem.VR == "SQ" or _is_bulk(elem):
            lines.append(f"{elem.tag} {elem.name:<35} {elem.VR}: {element_text(elem)}")
        else:
            lines.append(str(elem))
    return "\n".join(lines)


def bulk_text(length: int) -> str:
    return f"<bulk data: {length} bytes>"


def _is_bulk(elem: DataElement) -> bool:
    return elem.VR in BULK_VRS or isinstance(elem.value, bytes | bytearray)


def _pixel_lengths(path: Path) -> dict[str, int]:
    """Byte length of each pixel data element, read without loading defined-length data."""
    try:
        ds = pydicom.dcmread(path, defer_size=1024, force=True, specific_tags=list(PIXEL_TAGS))
        lengths = {}
        for tag, keyword in PIXEL_TAGS.items():
            if tag in ds:
                raw = ds.get_item(tag, keep_deferred=True)
                length = raw.length
                if length == UNDEFINED_LENGTH:  # encapsulated: the fragments were read
                    length = len(raw.value or b"")
                lengths[keyword] = int(length)
        return lengths
    except Exception:  # noqa: BLE001 - the renderer reports unreadable pixel data itself
        logger.info("pixel data length unreadable in %s", path.name)
        return {}


def _frames(path: Path, ds: Dataset, fmt: str) -> list[str]:
    """Every frame through the one renderer (each call decodes only its own frame)."""
    from dicom import rendering

    return [
        base64.b64encode(rendering.frame_render(source=str(path), frame=i, fmt=fmt)).decode()
        for i in range(rendering.frame_count(ds))
    ]
