"""One pass over a plain header, straight to DICOM JSON: the ingest's fast path.

Why this exists: ingest needs every header as DICOM JSON. ``pydicom.dcmread`` followed by
:func:`dicom.dicom_json.dataset_json` costs about 1-1.5 ms for a CT header, a tenth of an
upload's CPU time; most of it builds ``RawDataElement`` tuples and ``Dataset`` objects that are
thrown away once the JSON is made. :func:`header_scan` reads the file meta and the dataset
bytes once and gives *exactly* the JSON that path gives (same keys, key order, values and
value types), 3-4 times faster, using the same value decoders (:mod:`dicom.dicom_json`).

It reads only what it is sure to read as pydicom does, and answers None for anything else, so
that the caller reads the file with pydicom as before: no DICM prefix; a transfer syntax other
than a registered explicit VR little endian one (implicit VR, big endian, deflate, private);
pydicom settings other than those :func:`dicom.dicom_json.dataset_json` reads fast; an element
cut short, a length beyond the file, tags out of order or repeated; a VR it does not decode
here (UN, unknown VRs), LUT descriptors, non-ASCII or escaped text, numbers of an odd size,
unusual DS/IS values; a private element whose creator is not plain text; a Specific Character
Set inside a sequence item, or one whose text is not ASCII-compatible; sequences nested deeper
than :data:`MAX_DEPTH`. Hostile files all land there, and pydicom's read rejects them with
the messages the ingest has always given.

The scan stops at the top-level Pixel Data (or Float / Double Float Pixel Data) element, as
``stop_before_pixels`` does; pixel data inside a sequence item (an icon) is a bulk value.
"""

from __future__ import annotations

import base64
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.uid import UID

from dicom.dicom_json import (
    LUT_DESCRIPTOR_TAGS,
    NUMBER_STRUCTS,
    TEXT_DECODERS,
    _code_string,
    _fast_path_allowed,
    ascii_reading_codec,
    plain_creator,
    value_json,
)

PREAMBLE = 128
MAGIC = b"DICM"
META_START = PREAMBLE + len(MAGIC)
PIXEL_TAGS = frozenset((0x7FE00010, 0x7FE00008, 0x7FE00009))
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
SPECIFIC_CHARACTER_SET = 0x00080005
TRANSFER_SYNTAX_UID = 0x00020010
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
UNDEFINED_LENGTH = 0xFFFFFFFF
# Deeper than any real header; a deeper one goes to pydicom, which has its own limit.
MAX_DEPTH = 16

# VRs whose length is 4 bytes after 2 reserved ones (PS3.5 7.1.2)
LONG_LENGTH_VRS = frozenset(
    ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
LONG_LENGTH_VR_BYTES = frozenset(vr.encode("ascii") for vr in LONG_LENGTH_VRS)
BULK_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW"))
SCANNED_VRS = frozenset(TEXT_DECODERS) | frozenset(NUMBER_STRUCTS) | BULK_VRS | {"SQ", "AT"}
VR_NAMES = {vr.encode("ascii"): vr for vr in SCANNED_VRS}

ELEMENT = struct.Struct("<HH2sH")  # tag, VR, 2-byte length (or reserved)
LENGTH = struct.Struct("<L")
ITEM_HEADER = struct.Struct("<HHL")
AT_VALUE = struct.Struct("<HH")

BulkMarker = Callable[[int], str]


@dataclass(frozen=True)
class ScannedHeader:
    json: dict[str, Any]
    transfer_syntax_uid: str
    media_storage_sop_class_uid: str


class _Unusual(Exception):
    """The scan cannot be sure to read this as pydicom does: pydicom reads the file."""


def header_scan(
    buf: bytes | Any, size: int, *, bulk_threshold: int, bulk_marker: BulkMarker
) -> ScannedHeader | None:
    """The header of the DICOM file in ``buf`` (bytes or a memory map of ``size`` bytes)
    as DICOM JSON, bulk values longer than ``bulk_threshold`` base64 characters as a
    ``BulkDataURI`` from ``bulk_marker(tag)``; None when pydicom must read it."""
    if size < META_START + 8 or buf[PREAMBLE:META_START] != MAGIC or not _fast_path_allowed():
        return None
    try:
        meta, position = _meta_read(buf, size)
        syntax = _uid_text(meta.get(TRANSFER_SYNTAX_UID))
        if not _explicit_little_endian(syntax):
            return None
        sop_class = _uid_text(meta.get(MEDIA_STORAGE_SOP_CLASS_UID))
        scanner = _Scanner(buf, (bulk_threshold // 4) * 3, bulk_marker)
        header, _ = scanner.dataset(position, size, depth=0, encoding=default_encoding)
    except (_Unusual, struct.error, UnicodeDecodeError):
        return None
    return ScannedHeader(header, syntax, sop_class)


def _meta_read(buf: Any, size: int) -> tuple[dict[int, bytes], int]:
    """The group 0002 elements after the prefix (always explicit VR little endian), as raw
    values, and where the dataset starts."""
    meta: dict[int, bytes] = {}
    position = META_START
    while position + 8 <= size:
        group, element, vr_bytes, short = ELEMENT.unpack_from(buf, position)
        if group != 0x0002:
            return meta, position
        vr = VR_NAMES.get(vr_bytes)
        if vr is None:
            raise _Unusual
        if vr in LONG_LENGTH_VRS:
            (length,) = LENGTH.unpack_from(buf, position + 8)
            start = position + 12
        else:
            length, start = short, position + 8
        if length == UNDEFINED_LENGTH or start + length > size:
            raise _Unusual
        meta[group << 16 | element] = buf[start : start + length]
        position = start + length
    raise _Unusual  # a file that is only a file meta header, or cut inside it


def _uid_text(value: bytes | None) -> str:
    if not value:
        return ""
    if not value.isascii() or b"\\" in value:
        raise _Unusual  # pydicom decodes it, or reads several values
    return value.decode("ascii").rstrip("\x00 ").strip()  # as str(pydicom's UID) gives it


def _explicit_little_endian(syntax: str) -> bool:
    uid = UID(syntax)
    return (
        uid.is_transfer_syntax
        and uid.is_little_endian
        and not uid.is_implicit_VR
        and not uid.is_deflated
    )


class _Scanner:
    def __init__(self, buf: Any, inline_limit: int, bulk_marker: BulkMarker) -> None:
        self.buf = buf
        self.inline_limit = inline_limit  # bytes inlined as base64, above: a marker
        self.bulk_marker = bulk_marker

    def dataset(
        self,
        position: int,
        end: int,
        *,
        depth: int,
        encoding: str | None,
        delimited: bool = False,
    ) -> tuple[dict[str, Any], int]:
        """The elements from ``position`` as DICOM JSON, and where they stop: at ``end``,
        after an item delimiter (``delimited``), or at the top-level pixel data."""
        buf = self.buf
        header: dict[str, Any] = {}
        plain: dict[int, bool] = {}  # private groups: is the element at this tag plain LO?
        previous = -1
        while position < end:
            if position + 8 > end:
                raise _Unusual
            group, element, vr_bytes, short = ELEMENT.unpack_from(buf, position)
            tag = group << 16 | element
            if tag == ITEM_END and delimited:
                if LENGTH.unpack_from(buf, position + 4)[0] != 0:
                    raise _Unusual
                return header, position + 8
            if depth == 0 and tag in PIXEL_TAGS:
                # pydicom reads the whole element header before it stops
                if vr_bytes in LONG_LENGTH_VR_BYTES and position + 12 > end:
                    raise _Unusual
                return header, position
            if tag <= previous or group < 0x0008 or group >= 0xFFFC or tag in LUT_DESCRIPTOR_TAGS:
                raise _Unusual
            previous = tag
            vr = VR_NAMES.get(vr_bytes)
            if vr is None:
                raise _Unusual
            if vr in LONG_LENGTH_VRS:
                if position + 12 > end:
                    raise _Unusual
                (length,) = LENGTH.unpack_from(buf, position + 8)
                start = position + 12
            else:
                length, start = short, position + 8
            key = f"{tag:08X}"
            if vr == "SQ":
                if group & 1:
                    self.private_check(tag, vr, b"", plain)
                items, position = self.sequence(start, length, end, depth + 1, encoding)
                header[key] = {"vr": "SQ", "Value": items}
                continue
            position = start + length
            if length == UNDEFINED_LENGTH or position > end:
                raise _Unusual
            if vr in BULK_VRS and length > self.inline_limit:
                # a marker: the value (an encapsulated document, say) is never copied
                if group & 1:
                    self.private_check(tag, vr, b"", plain)
                header[key] = {"vr": vr, "BulkDataURI": self.bulk_marker(tag)}
                continue
            data = buf[start:position]
            if group & 1:
                self.private_check(tag, vr, data, plain)
            if tag == SPECIFIC_CHARACTER_SET:
                if depth:
                    raise _Unusual  # an item's own character set: pydicom decides
                encoding = _encoding(data)
            header[key] = self.element_json(tag, vr, data, encoding)
        if delimited or position != end:
            raise _Unusual
        return header, position

    def sequence(
        self, position: int, length: int, limit: int, depth: int, encoding: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        if depth > MAX_DEPTH:
            raise _Unusual
        undefined = length == UNDEFINED_LENGTH
        end = limit if undefined else position + length
        if end > limit:
            raise _Unusual
        items = []
        while position < end:
            if position + 8 > end:
                raise _Unusual
            group, element, item_length = ITEM_HEADER.unpack_from(self.buf, position)
            tag = group << 16 | element
            position += 8
            if tag == SEQUENCE_END and undefined:
                if item_length != 0:
                    raise _Unusual
                return items, position
            if tag != ITEM:
                raise _Unusual
            if item_length == UNDEFINED_LENGTH:
                item, position = self.dataset(
                    position, end, depth=depth, encoding=encoding, delimited=True
                )
            else:
                if position + item_length > end:
                    raise _Unusual
                item, position = self.dataset(
                    position, position + item_length, depth=depth, encoding=encoding
                )
            items.append(item)
        if undefined or position != end:
            raise _Unusual
        return items, position

    def private_check(self, tag: int, vr: str, data: bytes, plain: dict[int, bool]) -> None:
        """A private element is read only when the element at its Private Creator's tag is
        plain LO text (or absent), as :class:`dicom.dicom_json._Reader` requires."""
        if tag & 0xFF00 == 0:
            plain[tag] = plain_creator(vr, data)
        creator_tag = (tag & 0xFFFF0000) | ((tag & 0xFFFF) >> 8)
        if creator_tag != tag and not plain.get(creator_tag, True):
            raise _Unusual

    def element_json(self, tag: int, vr: str, data: bytes, encoding: str | None) -> dict:
        if vr in BULK_VRS:  # short enough to inline (longer ones are markers)
            if not data:
                return {"vr": vr}
            return {"vr": vr, "InlineBinary": base64.b64encode(data).decode("ascii")}
        value = _value(vr, data, encoding)
        return {"vr": vr, "Value": value} if value else {"vr": vr}


def _value(vr: str, data: bytes, encoding: str | None) -> list[Any]:
    """The JSON "Value" list of one element ([] when empty), read as
    :func:`dicom.dicom_json.value_json` reads it, and AT as pydicom reads it."""
    if vr == "AT":
        if len(data) % AT_VALUE.size:
            raise _Unusual
        return [f"{group:04X}{element:04X}" for group, element in AT_VALUE.iter_unpack(data)]
    value = value_json(vr, data, little_endian=True, encoding=encoding)
    if value is None:
        raise _Unusual
    return value


def _encoding(data: bytes) -> str | None:
    """The codec pydicom decodes the dataset's text with, if it reads ASCII as ASCII, from
    the raw (0008,0005) value, as :func:`dicom.dicom_json._text_encoding` picks it."""
    if not data.isascii():
        raise _Unusual
    terms = _code_string(data.decode("ascii")) or [""]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            encodings = convert_encodings(terms[0] if len(terms) == 1 else terms)
        except Exception as exc:
            raise _Unusual from exc
    return ascii_reading_codec(encodings)
