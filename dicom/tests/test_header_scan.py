"""``header_scan`` gives exactly the DICOM JSON that pydicom's read gives (same keys, key
order, values, value types, and the file meta UIDs), or None so that pydicom reads the file:
on every file pydicom ships, on the real corpus and on hand-made files. The ingest reads plain
files with it and stores what pydicom would have stored."""

from __future__ import annotations

import io
import mmap
import random
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pydicom
import pydicom.examples
import pytest

from dicom.header_scan import MAX_DEPTH, ScannedHeader, header_scan
from dicom.ingest import header_json, instance_ingest
from dicom.tests.factories import ct_small_path, ct_variant
from dicom.tests.test_dicom_json import (  # noqa: F401 - pydicom_settings: both settings
    CHARSET_CASES,
    CORPUS,
    DS_VALUES,
    IS_VALUES,
    LE,
    NUMBER_ELEMENTS_LE,
    PN_VALUES,
    TEXT_ELEMENTS,
    _pydicom_files,
    assert_same_json,
    encode,
    pydicom_settings,
    reference_json,
    sequence,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EXPLICIT_LE = "1.2.840.10008.1.2.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
PLAIN = [(0x00080060, "CS", b"CT"), (0x00100010, "PN", b"Doe^John")]


def scan(data: bytes) -> ScannedHeader | None:
    return header_scan(
        data, len(data), bulk_threshold=1024, bulk_marker=lambda tag: f"bulk/{tag:08X}"
    )


def assert_scan_matches(data: bytes) -> ScannedHeader | None:
    """The scan of ``data``, checked against pydicom's read of it; None if it gave up."""
    scanned = scan(data)
    if scanned is None:
        return None
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    assert_same_json(scanned.json, reference_json(ds))
    assert_same_json(scanned.json, header_json(ds))
    assert scanned.transfer_syntax_uid == str(ds.file_meta.TransferSyntaxUID)
    assert scanned.media_storage_sop_class_uid == str(
        ds.file_meta.get("MediaStorageSOPClassUID", "")
    )
    return scanned


def uid_bytes(uid: str) -> bytes:
    value = uid.encode()
    return value + b"\x00" * (len(value) % 2)


def dicom_file(
    body: bytes, *, syntax: str = EXPLICIT_LE, meta: list[tuple[int, str, bytes]] = ()
) -> bytes:
    """A Part 10 file: preamble, prefix, file meta (explicit VR little endian), ``body``."""
    elements = [
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", uid_bytes(CT_IMAGE)),
        (0x00020003, "UI", uid_bytes("1.2.3.4")),
        (0x00020010, "UI", uid_bytes(syntax)),
        *meta,
    ]
    group = encode(elements, **LE)
    length = encode([(0x00020000, "UL", struct.pack("<L", len(group)))], **LE)
    return b"\x00" * 128 + b"DICM" + length + group + body


def plain_file(elements: list[tuple[int, str, bytes]], **kwargs: Any) -> bytes:
    return dicom_file(encode(elements, **LE), **kwargs)


def undefined_sequence(tag: int, items: list[bytes], *, undefined_items: bool) -> bytes:
    """An SQ element of undefined length, its items of undefined length or not."""
    body = b""
    for item in items:
        if undefined_items:
            body += struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED) + item
            body += struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
        else:
            body += struct.pack("<HHL", 0xFFFE, 0xE000, len(item)) + item
    body += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, b"SQ", 0, UNDEFINED) + body


def nested(depth: int) -> tuple[int, str, bytes]:
    element = (0x00080100, "SH", b"LEAF")
    for _ in range(depth):
        element = sequence(0x0040A730, [encode([element], **LE)])
    return element


# --- every file pydicom ships, and the real corpus -------------------------------------------


@pytest.mark.parametrize("path", _pydicom_files())
def test_every_pydicom_test_file_scans_as_pydicom_reads_it(path):
    assert_scan_matches(Path(path).read_bytes())


@pytest.mark.corpus
@pytest.mark.parametrize("filename", CORPUS)
def test_every_corpus_file_scans_as_pydicom_reads_it(filename, corpus):
    assert_scan_matches((corpus / filename).read_bytes())


def test_plain_files_are_scanned():
    for name in ("ct", "mr"):
        scanned = assert_scan_matches(Path(pydicom.examples.get_path(name)).read_bytes())
        assert scanned is not None, name
        assert "7FE00010" not in scanned.json
    scanned = scan(ct_small_path().read_bytes())
    assert scanned.json["00100010"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "CompressedSamples^CT1"}],
    }
    assert scanned.json["00280030"] == {"vr": "DS", "Value": [0.661468, 0.661468]}
    assert scanned.json["00431029"] == {"vr": "OB", "BulkDataURI": "bulk/00431029"}


# --- hand-made files: values --------------------------------------------------------------


@pytest.mark.parametrize(
    "tag, vr, value",
    [(0x00180050, "DS", v) for v in DS_VALUES]
    + [(0x00200013, "IS", v) for v in IS_VALUES]
    + [(0x00100010, "PN", v) for v in PN_VALUES],
    ids=repr,
)
def test_number_strings_and_names_scan_as_pydicom_reads_them(tag, vr, value):
    assert_scan_matches(plain_file([(tag, vr, value)]))


def test_plain_values_are_scanned_and_unusual_ones_left_to_pydicom():
    assert scan(plain_file([(0x00180050, "DS", b" 1.5 ")])) is not None
    assert scan(plain_file([(0x00200013, "IS", b"1.0")])) is not None
    assert scan(plain_file([(0x00100010, "PN", b"Doe^John=Ideo=Pho")])) is not None
    assert scan(plain_file([(0x00200013, "IS", b"1.5")])) is None  # pydicom: ISfloat
    assert scan(plain_file([(0x00180050, "DS", b"1,5")])) is None


def test_text_numbers_and_tags_scan_as_pydicom_reads_them():
    numbers = [element for element in NUMBER_ELEMENTS_LE if element[0] != 0x00181310]
    at = [(0x00209165, "AT", struct.pack("<4H", 0x0020, 0x9056, 0x0020, 0x9057))]
    wide = [  # 64-bit numbers: their length takes 4 bytes, as OB's does
        (0x0008040C, "UV", struct.pack("<Q", 2**40)),
        (0x00720082, "SV", struct.pack("<2q", -(2**40), 7)),
    ]
    scanned = assert_scan_matches(plain_file(sorted(TEXT_ELEMENTS + numbers + at + wide)))
    assert scanned is not None
    assert scanned.json["00720082"] == {"vr": "SV", "Value": [-(2**40), 7]}
    assert scanned.json["00280011"] == {"vr": "US", "Value": [1, 2, 65535]}
    assert scanned.json["00209165"] == {"vr": "AT", "Value": ["00209056", "00209057"]}
    assert scanned.json["00080021"] == {"vr": "DA"}


@pytest.mark.parametrize("length, field", [(768, "InlineBinary"), (769, "BulkDataURI")])
def test_bulk_values_are_inline_up_to_the_threshold(length, field):
    scanned = assert_scan_matches(plain_file([(0x00431029, "OB", b"\x01" * length)]))
    assert field in scanned.json["00431029"]


def test_a_large_bulk_value_in_the_header_is_never_copied(tmp_path):
    document = tmp_path / "document.dcm"
    document.write_bytes(plain_file([*PLAIN, (0x00420011, "OB", b"%PDF" * (16 * 1024 * 1024))]))
    with document.open("rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        tracemalloc.start()
        scanned = header_scan(mm, len(mm), bulk_threshold=1024, bulk_marker=lambda t: "bulk")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert scanned.json["00420011"] == {"vr": "OB", "BulkDataURI": "bulk"}
    assert peak < 1024 * 1024  # of a 64 MB document


@pytest.mark.parametrize("charset, name", CHARSET_CASES.values(), ids=CHARSET_CASES.keys())
def test_character_sets_scan_as_pydicom_reads_them(charset, name):
    elements = [
        (0x00080005, "CS", charset),
        (0x00080070, "LO", name.split(b"^")[0]),
        (0x00100010, "PN", name),
        (0x00104000, "LT", name + b"\r\n"),
    ]
    assert_scan_matches(plain_file(elements))


def test_ascii_text_is_scanned_and_other_text_left_to_pydicom():
    latin = [(0x00080005, "CS", b"ISO_IR 100"), (0x00100010, "PN", b"Muller^Jurgen")]
    assert scan(plain_file(latin)) is not None
    utf8 = [(0x00080005, "CS", b"ISO_IR 192"), (0x00100010, "PN", "Müller^Jürgen".encode())]
    assert scan(plain_file(utf8)) is None
    escapes = [(0x00080005, "CS", b"\\ISO 2022 IR 87"), (0x00100010, "PN", b"A\x1b$B")]
    assert scan(plain_file(escapes)) is None


# --- hand-made files: structure -----------------------------------------------------------


@pytest.mark.parametrize("undefined_items", [False, True])
def test_sequences_of_every_length_form_scan_as_pydicom_reads_them(undefined_items):
    item = encode([(0x00081150, "UI", b"1.2.3\x00"), (0x00200013, "IS", b" 4 ")], **LE)
    body = encode([(0x00080005, "CS", b"ISO_IR 100"), sequence(0x00081140, [item, item])], **LE)
    body += encode([sequence(0x00081155, [])], **LE)
    body += undefined_sequence(0x00082112, [item, b""], undefined_items=undefined_items)
    body += encode([(0x00100010, "PN", b"After^Sequences")], **LE)
    scanned = assert_scan_matches(dicom_file(body))
    assert scanned.json["00081140"]["Value"][1]["00200013"] == {"vr": "IS", "Value": [4]}
    assert scanned.json["00081155"] == {"vr": "SQ", "Value": []}
    assert scanned.json["00082112"]["Value"][1] == {}


def test_one_bad_item_value_leaves_the_file_to_pydicom():
    good = encode([(0x00200013, "IS", b"4")], **LE)
    bad = encode([(0x00200013, "IS", b"1\\\\2")], **LE)
    assert scan(plain_file([sequence(0x00082112, [good, bad])])) is None


def test_nesting_beyond_the_limit_is_left_to_pydicom():
    assert assert_scan_matches(plain_file([nested(MAX_DEPTH)])) is not None
    assert scan(plain_file([nested(MAX_DEPTH + 1)])) is None
    assert scan(plain_file([nested(3000)])) is None


def test_private_elements_under_a_plain_creator_are_scanned():
    plain = [
        (0x00090010, "LO", b"ACME 1.0"),
        (0x00091001, "SS", struct.pack("<h", -7)),
        (0x00091002, "DS", b"1.5\\2"),
        (0x00151001, "SH", b"no creator at all"),
    ]
    assert assert_scan_matches(plain_file(plain)) is not None
    broken = [(0x00110010, "US", b"\x01\x00"), (0x00111001, "LO", b"under a US creator")]
    assert scan(plain_file(broken)) is None
    non_ascii = [(0x00130010, "LO", b"Cr\xe9ateur"), (0x00131001, "SH", b"under it")]
    assert scan(plain_file(non_ascii)) is None


def test_the_scan_stops_at_the_top_level_pixel_data():
    head = [(0x00280010, "US", struct.pack("<H", 2)), (0x00280011, "US", struct.pack("<H", 2))]
    for pixel_tag, vr in ((PIXEL_DATA, "OW"), (0x7FE00008, "OF"), (0x7FE00009, "OD")):
        data = plain_file([*head, (pixel_tag, vr, b"\x00" * 8), (0xFFFCFFFC, "OB", b"\x00" * 4)])
        scanned = assert_scan_matches(data)
        assert list(scanned.json) == ["00280010", "00280011"]


def test_pixel_data_in_a_sequence_item_is_a_bulk_value():
    icon = encode([(0x00280010, "US", b"\x40\x00"), (PIXEL_DATA, "OB", b"\x07" * 4096)], **LE)
    scanned = assert_scan_matches(plain_file([sequence(0x00880200, [icon])]))
    item = scanned.json["00880200"]["Value"][0]
    assert item["7FE00010"] == {"vr": "OB", "BulkDataURI": "bulk/7FE00010"}


def _cut(data: bytes, drop: int) -> bytes:
    return data[:-drop]


UNUSUAL_FILES = {
    "implicit VR": lambda: dicom_file(
        encode(PLAIN, implicit=True, little=True), syntax="1.2.840.10008.1.2"
    ),
    "big endian": lambda: dicom_file(
        encode(PLAIN, implicit=False, little=False), syntax="1.2.840.10008.1.2.2"
    ),
    "deflated": lambda: plain_file(PLAIN, syntax="1.2.840.10008.1.2.1.99"),
    "a private transfer syntax": lambda: plain_file(PLAIN, syntax="1.2.3.4.5"),
    "no transfer syntax": lambda: b"\x00" * 128 + b"DICM" + encode(PLAIN, **LE),
    "no DICM prefix": lambda: encode(PLAIN, **LE),
    "cut inside an element header": lambda: _cut(plain_file(PLAIN), len(b"Doe^John") + 4),
    "cut inside the pixel data's element header": lambda: _cut(
        plain_file([*PLAIN, (PIXEL_DATA, "OW", b"\x00" * 8)]), 8 + 2
    ),
    "cut inside a value": lambda: _cut(plain_file(PLAIN), 2),
    "a length beyond the file": lambda: (
        plain_file(PLAIN) + struct.pack("<HH2sH", 0x0010, 0x0020, b"LO", 200)
    ),
    "tags out of order": lambda: plain_file(list(reversed(PLAIN))),
    "a repeated tag": lambda: plain_file([*PLAIN, PLAIN[-1]]),
    "an UN element": lambda: plain_file([*PLAIN, (0x00190010, "UN", b"\x00\x01")]),
    "an unknown VR": lambda: plain_file([*PLAIN, (0x00200010, "ZZ", b"1 ")]),
    "a group below 0008 in the dataset": lambda: plain_file([(0x00041130, "CS", b"X "), *PLAIN]),
    "a LUT descriptor": lambda: plain_file(
        [*PLAIN, (0x00281101, "US", struct.pack("<3H", 256, 0, 16))]
    ),
    "a number of an odd size": lambda: plain_file([*PLAIN, (0x00280010, "US", b"\x01\x00\x02")]),
    "a character set in an item": lambda: plain_file(
        [sequence(0x00081140, [encode([(0x00080005, "CS", b"ISO_IR 192")], **LE)])]
    ),
    "an undefined length that is not a sequence": lambda: dicom_file(
        struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, UNDEFINED) + b"\x00" * 16
    ),
    "a sequence longer than the file": lambda: dicom_file(
        struct.pack("<HH2sHL", 0x0008, 0x1140, b"SQ", 0, 1000) + b"\x00" * 16
    ),
    "an item that is not an item": lambda: plain_file([(0x00081140, "SQ", b"\x08\x00" * 4)]),
}


@pytest.mark.parametrize("make", UNUSUAL_FILES.values(), ids=UNUSUAL_FILES.keys())
def test_unusual_files_are_left_to_pydicom(make):
    assert scan(make()) is None


def test_files_holding_no_more_than_a_file_meta_are_left_to_pydicom():
    assert scan(b"") is None
    assert scan(b"\x00" * 128 + b"DICM") is None
    assert scan(dicom_file(b"")) is None


# --- the ingest reads plain files with it ---------------------------------------------------


@pytest.mark.django_db
def test_a_plain_upload_is_stored_without_pydicom_reading_it(owner, monkeypatch):
    data = ct_variant(PatientName="Yamada^Tarou=YAMADA=yamada")
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    expected = header_json(ds)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pydicom read a plain file")

    monkeypatch.setattr(pydicom, "dcmread", refuse)
    instance = instance_ingest(stream=io.BytesIO(data), owner=owner, source="test").instance
    assert_same_json(instance.header, expected)
    assert instance.transfer_syntax_uid == EXPLICIT_LE
    assert instance.sop_class_uid == CT_IMAGE
    study = instance.series.study
    assert study.patient_name == str(ds.PatientName) == "Yamada^Tarou=YAMADA=yamada"
    assert study.patient_record.patient_name == str(ds.PatientName)
    assert study.referring_physician_name == str(ds.ReferringPhysicianName)


@pytest.mark.django_db
def test_names_read_by_pydicom_are_stored_as_pydicom_gives_them(owner):
    name = "Müller^Jürgen=ミュラー"
    data = ct_variant(SpecificCharacterSet="ISO_IR 192", PatientName=name)
    assert scan(data) is None
    instance = instance_ingest(stream=io.BytesIO(data), owner=owner, source="test").instance
    assert instance.series.study.patient_name == name
    assert instance.header["00100010"]["Value"] == [
        {"Alphabetic": "Müller^Jürgen", "Ideographic": "ミュラー"}
    ]


# --- damaged files ------------------------------------------------------------------------


def _damaged(data: bytes, rng: random.Random) -> bytes:
    """``data`` with a few bytes of its header overwritten, cut, or a stretch repeated."""
    header_end = data.find(b"\xe0\x7f\x10\x00") if b"\xe0\x7f\x10\x00" in data else len(data)
    damaged = bytearray(data[: header_end + 64])
    kind = rng.randrange(3)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(132, len(damaged))] = rng.randrange(256)
    elif kind == 1:
        del damaged[rng.randrange(132, len(damaged)) :]
    else:
        start = rng.randrange(132, len(damaged))
        damaged[start:start] = damaged[start : start + rng.randint(1, 40)]
    return bytes(damaged)


@pytest.mark.parametrize("name", ["ct", "mr"])
def test_damaged_files_never_break_the_scan_nor_make_it_disagree_with_pydicom(name):
    """Whatever a damaged file holds, the scan gives pydicom's JSON or None; it never raises.
    A longer run of this (250,000 damaged CT, MR and benchmark files) found no disagreement
    once the file meta UID cases it first turned up were fixed."""
    rng = random.Random(20261203)
    data = Path(pydicom.examples.get_path(name)).read_bytes()
    scanned = 0
    for _ in range(300):
        damaged = _damaged(data, rng)
        try:
            result = assert_scan_matches(damaged)
        except AssertionError:
            raise
        except Exception as exc:  # pydicom itself cannot read it: the scan must have said None
            assert scan(damaged) is None, f"the scan read what pydicom cannot: {exc!r}"
            continue
        scanned += result is not None
    assert scanned > 0  # some damage leaves a file the scan still reads (a changed value)
