"""DICOM JSON (PS3.18 Annex F) for a freshly read header, fast enough for ingest.

Why this exists: ingest stores every header as DICOM JSON. Asking pydicom for it element by
element (``ds[tag].to_json_dict(...)``) costs 10-15 ms for a CT header of ~250 elements, the
largest single cost of ingest: each raw element is first converted to a ``DataElement``
holding ``DSfloat``/``IS``/``UID``/``PersonName`` objects, only to be turned back into plain
numbers and strings. :func:`dataset_json` reads the raw bytes of the common, simple elements
itself, about ten times faster, and gives *exactly* the dict that loop gives: same keys, same
key order, same values and value types.

The fast path reads raw (not yet converted) elements whose VR is known without looking at
any other element: binary numbers (US SS UL SL UV SV FL FD), the text VRs (AE AS CS DA DT
TM UI UR, SH LO UC, ST LT UT), DS, IS and PN, when the value is pure ASCII and, for the VRs
that follow (0008,0005) *Specific Character Set*, that character set reads ASCII as ASCII.
It gives up on any value it is not sure to read as pydicom does. Everything else falls back
on pydicom, per element, exactly as before: ``ds[tag].to_json_dict(...)``. That covers
bulk VRs (OB OW OF OD OL OV UN) and the bulk-data marker, AT, ambiguous VRs (``US or SS``,
``OB or OW``), LUT descriptors, implicit-VR private and unknown tags, private elements
whose creator pydicom might fail to read, elements already converted, deferred values,
non-ASCII text, escape sequences, numbers of the wrong length, unusual DS/IS values.
Sequences are converted by pydicom and their items walked the same way.

pydicom's conversion also depends on global settings. The fast path is taken under the
"ignore" (Lightbox's, see ``dicom/apps.py``) and "warn" reading validation modes; under
"raise", ``datetime_conversion``, DS/IS as numpy or Decimal, conversion hooks, or warnings
turned into errors, every element falls back. Global settings are never changed.

Elements the fast path reads stay raw in the dataset, so later reads (``ds.PatientName``) go
through pydicom as usual.
"""

from __future__ import annotations

import logging
import math
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom import config
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

logger = logging.getLogger(__name__)

BulkMarker = Callable[[DataElement], str]

ESC = b"\x1b"

# (0028,1101-1103) and (0028,3002) LUT Descriptors: pydicom rewrites a negative first value.
LUT_DESCRIPTOR_TAGS = frozenset((0x00281101, 0x00281102, 0x00281103, 0x00283002))

# Python codecs that decode every ASCII byte but ESC to the same character, as ASCII does.
# Not the ISO 2022 codecs (stateful) nor shift_jis (pydicom encodes it with its own codec).
ASCII_COMPATIBLE_ENCODINGS = frozenset(
    (
        "iso8859",
        "latin_1",
        "iso8859_2",
        "iso8859_3",
        "iso8859_4",
        "iso_ir_126",
        "iso_ir_127",
        "iso_ir_138",
        "iso_ir_144",
        "iso_ir_148",
        "iso_ir_166",
        "UTF8",
        "GB18030",
        "GBK",
        "GB2312",
        "euc_kr",
    )
)

# The binary number VRs, read as pydicom's ``convert_numbers`` reads them (standard sizes)
NUMBER_FORMATS = {
    "US": "H",
    "SS": "h",
    "UL": "L",
    "SL": "l",
    "UV": "Q",
    "SV": "q",
    "FL": "f",
    "FD": "d",
}
NUMBER_STRUCTS = {
    vr: (struct.Struct(f"<{code}"), struct.Struct(f">{code}"))
    for vr, code in NUMBER_FORMATS.items()
}

# Text VRs decoded with (0008,0005) rather than always as ISO 8859-1
CHARSET_VRS = frozenset(("SH", "LO", "UC", "ST", "LT", "UT", "PN"))


@dataclass(frozen=True)
class _Options:
    bulk_marker: BulkMarker
    bulk_threshold: int
    fast: bool


def dataset_json(
    ds: Dataset, *, bulk_threshold: int = 1024, bulk_marker: BulkMarker | None = None
) -> dict[str, Any]:
    """The top-level elements of ``ds`` as DICOM JSON, keyed ``GGGGEEEE`` in dataset order.

    Bulk values longer than ``bulk_threshold`` base64 characters carry a ``BulkDataURI``
    from ``bulk_marker`` (default ``bulk/GGGGEEEE``). An element whose value pydicom cannot
    convert is left out (and logged); a ``RecursionError`` (sequences nested too deep)
    propagates.
    """
    options = _Options(
        bulk_marker=bulk_marker or _bulk_marker,
        bulk_threshold=bulk_threshold,
        fast=_fast_path_allowed(),
    )
    reader = _Reader(ds, options)
    header: dict[str, Any] = {}
    for tag, elem in ds._dict.items():
        try:
            header[f"{tag:08X}"] = reader.element_json(tag, elem)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - one bad value must not sink the header
            logger.info("header element left out tag=%08X", tag)
    return header


def _bulk_marker(elem: DataElement) -> str:
    return f"bulk/{elem.tag:08X}"


def _fast_path_allowed() -> bool:
    """True when pydicom's global settings are those the fast decoders mimic."""
    return (
        config.settings.reading_validation_mode != config.RAISE
        and not config.data_element_callback
        and not config.datetime_conversion
        and not config.use_DS_decimal
        and not config.use_DS_numpy
        and not config.use_IS_numpy
        and not config.use_none_as_empty_text_VR_value
        and hooks.raw_element_vr is raw_element_vr
        and hooks.raw_element_value is raw_element_value
        and not hooks.raw_element_kwargs
        and not _validation_warnings_raise()
    )


def _validation_warnings_raise() -> bool:
    """In "warn" mode pydicom warns (``UserWarning``) about invalid values; under a warnings
    filter that turns those into errors the element is left out, which the fast path cannot
    mimic."""
    if config.settings.reading_validation_mode != config.WARN:
        return False
    return any(
        action == "error" and issubclass(UserWarning, category)
        for action, _message, category, _module, _line in warnings.filters
    )


def _pydicom_json(element: DataElement, options: _Options) -> dict[str, Any]:
    """What ``element.to_json_dict`` gives, walking sequence items with the fast path."""
    items = element.value
    if element.VR == "SQ" and isinstance(items, Sequence):
        return {"vr": element.VR, "Value": [_item_json(item, options) for item in items]}
    return element.to_json_dict(
        bulk_data_element_handler=options.bulk_marker,
        bulk_data_threshold=options.bulk_threshold,
    )


def _item_json(item: Dataset, options: _Options) -> dict[str, Any]:
    """A sequence item as ``Dataset.to_json_dict`` gives it: any failing element fails the
    whole item, and so the whole sequence element."""
    reader = _Reader(item, options)
    return {f"{tag:08X}": reader.element_json(tag, elem) for tag, elem in item._dict.items()}


class _Reader:
    """Turns the elements of one dataset (the top level or a sequence item) into JSON."""

    def __init__(self, ds: Dataset, options: _Options) -> None:
        self.ds = ds
        self.options = options
        self.fast = options.fast
        self.encoding = _text_encoding(ds) if options.fast else None
        self.plain_creators: dict[int, bool] = {}

    def element_json(self, tag: BaseTag, elem: Any) -> dict[str, Any]:
        if self.fast and type(elem) is RawDataElement:
            vr = self.fast_vr(tag, elem)
            if vr is not None:
                value = self.fast_value(vr, elem)
                if value is not None:
                    return {"vr": vr, "Value": value} if value else {"vr": vr}
        return _pydicom_json(self.ds[tag], self.options)

    def fast_vr(self, tag: BaseTag, raw: RawDataElement) -> str | None:
        """The VR pydicom would give ``raw``, if it is one the fast path reads; else None."""
        value = raw.value
        if type(value) is not bytes or raw.length != len(value):
            return None  # deferred or undefined length: pydicom decides
        if raw.tag is not tag and int(raw.tag) != int(tag):  # (BaseTag's == is slow)
            return None  # pydicom refuses an element filed under another tag
        if tag in LUT_DESCRIPTOR_TAGS:
            return None
        private = (tag >> 16) & 1
        vr = raw.VR
        if vr is None:  # implicit VR: the dictionary's, unless private or unknown
            vr = None if private else _dictionary_vr(tag)
        elif private and not self.creator_is_plain(int(tag)):
            return None
        return vr if vr in FAST_VRS else None

    def fast_value(self, vr: str, raw: RawDataElement) -> list[Any] | None:
        """The JSON "Value" list of a raw element ([] when empty), or None to fall back."""
        return value_json(vr, raw.value, little_endian=raw.is_little_endian, encoding=self.encoding)

    def creator_is_plain(self, tag: int) -> bool:
        """Setting a private element reads its (gggg,00xx) *Private Creator*; pydicom
        leaves the element out if that read fails, so it must be one that cannot fail."""
        creator_tag = (tag & 0xFFFF0000) | ((tag & 0xFFFF) >> 8)
        if creator_tag == tag:
            return True
        plain = self.plain_creators.get(creator_tag)
        if plain is None:
            plain = _creator_is_plain(self.ds._dict.get(creator_tag))
            self.plain_creators[creator_tag] = plain
        return plain


def value_json(
    vr: str, data: bytes, *, little_endian: bool, encoding: str | None
) -> list[Any] | None:
    """The JSON "Value" list of the raw bytes of a value of one of the fast VRs ([] when
    empty), as pydicom converts them; None when pydicom must convert them. ``encoding`` is
    the dataset's text codec when it reads ASCII as ASCII (:func:`_text_encoding`)."""
    if not data:
        return []
    unpackers = NUMBER_STRUCTS.get(vr)
    if unpackers is not None:
        return _numbers(data, unpackers[0] if little_endian else unpackers[1])
    if not data.isascii():
        return None
    if vr in CHARSET_VRS and (encoding is None or ESC in data):
        return None
    return TEXT_DECODERS[vr](data.decode("ascii"))


def plain_creator(vr: str | None, value: bytes) -> bool:
    """A Private Creator that pydicom reads without fail: ASCII LO with no escape."""
    return vr == "LO" and value.isascii() and ESC not in value


def _text_encoding(ds: Dataset) -> str | None:
    """The Python codec pydicom decodes ``ds``'s SH/LO/UC/ST/LT/UT/PN values with (when they
    hold no escape sequence), if it reads ASCII as ASCII; otherwise None."""
    try:
        # the same expression as ``Dataset.__getitem__`` for a raw element
        encodings = ds.original_character_set or ds._character_set
    except RecursionError:
        raise
    except Exception:  # noqa: BLE001 - let pydicom meet (and report) the problem per element
        return None
    return ascii_reading_codec(encodings)


def ascii_reading_codec(encodings: str | list[str] | None) -> str | None:
    """The codec pydicom decodes text with, of its ``encodings`` (a name or a list, the
    first applying to text without escape sequences), if it reads ASCII as ASCII."""
    if isinstance(encodings, str):
        first = encodings
    else:
        first = encodings[0] if encodings else default_encoding
    return first if first in ASCII_COMPATIBLE_ENCODINGS else None


def _dictionary_vr(tag: BaseTag) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _creator_is_plain(creator: Any) -> bool:
    if creator is None or isinstance(creator, DataElement):
        return True
    return type(creator.value) is bytes and plain_creator(creator.VR, creator.value)


def _numbers(data: bytes, unpacker: struct.Struct) -> list[Any] | None:
    if len(data) == unpacker.size:
        return [unpacker.unpack(data)[0]]
    if len(data) % unpacker.size:
        return None  # pydicom raises, or makes it UN, depending on its settings
    return [number for (number,) in unpacker.iter_unpack(data)]


# --- text decoders: one per VR, as pydicom's converters split and strip -------------------


def _values(parts: list[str]) -> list[Any]:
    """A single empty value is no value; several values are kept, empty ones included."""
    if len(parts) == 1 and not parts[0]:
        return []
    return parts


def _ae(text: str) -> list[Any] | None:
    return _values([part.strip() for part in text.split("\\")])


def _code_string(text: str) -> list[Any] | None:
    """AS, CS, DA, DT, TM: trailing spaces and NULs dropped, then split."""
    return _values(text.rstrip(" \x00").split("\\"))


def _ui(text: str) -> list[Any] | None:
    parts = text.rstrip("\x00 ").split("\\")
    # pydicom validates each UID only to warn; the value is the same
    return _values([UID(part, config.IGNORE) for part in parts])


def _ur(text: str) -> list[Any] | None:
    return _values([text.rstrip()])


def _short_text(text: str) -> list[Any] | None:
    """SH, LO, UC: split, then trailing spaces and NULs dropped from each value."""
    return _values([part.rstrip("\x00 ") for part in text.split("\\")])


def _long_text(text: str) -> list[Any] | None:
    """ST, LT, UT: a single value, backslashes included."""
    return _values([text.rstrip("\x00 ")])


def _ds(text: str) -> list[Any] | None:
    """DS: pydicom's ``DSfloat`` is ``float()`` of each value, checked only when reading
    validation is "raise"."""
    numbers = text.strip().rstrip(" \x00")
    if not numbers:
        return []
    try:
        return [float(part) for part in numbers.split("\\")]
    except ValueError:
        return None  # an empty value among several, "1,5"...: pydicom decides


def _is(text: str) -> list[Any] | None:
    numbers = text.rstrip(" \x00")
    if not numbers:
        return []
    values = [_integer(part) for part in numbers.split("\\")]
    if None in values:
        return None
    return values


def _integer(part: str) -> int | None:
    """One value as pydicom's ``IS`` reads it: ``int()``, else ``int(float())`` ("1.0",
    "1e3"); None (fall back) when it is not an integer that a float holds exactly, as
    pydicom then makes an ``ISfloat`` or fails."""
    try:
        real = float(part)
    except ValueError:
        return None
    try:
        number = int(part)
    except ValueError:
        if not math.isfinite(real):
            return None
        number = int(real)
    return number if number == real else None


def _pn(text: str) -> list[Any] | None:
    """PN: each value's component groups, as ``PersonName`` splits them at "="."""
    names = text.rstrip("\x00 ").split("\\")
    groups = [_name_groups(name) for name in names]
    if len(groups) == 1:
        return [_name_json(groups[0])] if groups[0] else []
    if not all(groups):
        return None  # pydicom fails on an empty name among several
    return [_name_json(group) for group in groups]


def _name_groups(name: str) -> list[str]:
    groups = name.split("=")
    while groups and not groups[-1]:
        groups.pop()
    return groups


def _name_json(groups: list[str]) -> dict[str, str]:
    name = {"Alphabetic": groups[0]}
    if len(groups) > 1:
        name["Ideographic"] = groups[1]
    if len(groups) > 2:
        name["Phonetic"] = groups[2]
    return name


TEXT_DECODERS: dict[str, Callable[[str], list[Any] | None]] = {
    "AE": _ae,
    "AS": _code_string,
    "CS": _code_string,
    "DA": _code_string,
    "DT": _code_string,
    "TM": _code_string,
    "UI": _ui,
    "UR": _ur,
    "SH": _short_text,
    "LO": _short_text,
    "UC": _short_text,
    "ST": _long_text,
    "LT": _long_text,
    "UT": _long_text,
    "DS": _ds,
    "IS": _is,
    "PN": _pn,
}

FAST_VRS = frozenset(NUMBER_STRUCTS) | frozenset(TEXT_DECODERS)
