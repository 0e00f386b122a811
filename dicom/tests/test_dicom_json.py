"""``dataset_json`` gives exactly the dict of the element-by-element pydicom loop it replaces
(``ds[tag].to_json_dict(...)``): same keys, key order, values and value types, on every file
pydicom ships, on the real corpus and on hand-made datasets."""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pydicom.examples
import pytest
from pydicom import config
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.data.data_manager import DATA_ROOT
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.valuerep import PersonName

from conftest import corpus_rows
from dicom.dicom_json import ASCII_COMPATIBLE_ENCODINGS, dataset_json

# pydicom warns about the many odd values in its own test files; they are the point here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True, params=["lightbox-settings", "pydicom-defaults"])
def pydicom_settings(request, monkeypatch):
    """Every comparison runs under the settings ``dicom/apps.py`` sets at start-up (no value
    validation, wrong-length numbers read as UN) and under pydicom's own defaults."""
    lightbox = request.param == "lightbox-settings"
    mode = config.IGNORE if lightbox else config.WARN
    monkeypatch.setattr(config.settings, "reading_validation_mode", mode)
    monkeypatch.setattr(config, "convert_wrong_length_to_UN", lightbox)


def bulk_marker(elem: Any) -> str:
    return f"bulk/{elem.tag:08X}"


def reference_json(ds: Dataset, *, threshold: int = 1024, marker: Any = bulk_marker) -> dict:
    """The oracle: ingest's ``header_json`` loop, every element through pydicom."""
    header = {}
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset yields elements, not tags
        try:
            header[f"{tag:08X}"] = ds[tag].to_json_dict(
                bulk_data_element_handler=marker, bulk_data_threshold=threshold
            )
        except RecursionError:
            raise
        except Exception:
            pass
    return header


def types_of(value: Any) -> Any:
    """The same structure with every leaf replaced by its exact type's name."""
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return type(value).__name__


def nan_as_text(value: Any) -> Any:
    """The same structure with NaN (never equal to itself) spelled out, for ``==``."""
    if isinstance(value, dict):
        return {key: nan_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nan_as_text(item) for item in value]
    return "NaN" if isinstance(value, float) and value != value else value


def assert_same_json(fast: dict, reference: dict) -> None:
    assert nan_as_text(fast) == nan_as_text(reference)
    # int vs float, key order (``repr`` only for the dates of ``datetime_conversion``)
    assert json.dumps(fast, default=repr) == json.dumps(reference, default=repr)
    assert types_of(fast) == types_of(reference)  # str vs UID, too


def assert_matches_pydicom(read: Any) -> None:
    """``read()`` gives a fresh dataset: one for the oracle, one for the fast path."""
    try:
        oracle_ds, fast_ds = read(), read()
    except Exception as exc:
        pytest.skip(f"pydicom cannot read it: {type(exc).__name__}")
    try:
        reference = reference_json(oracle_ds)
    except Exception as exc:
        pytest.skip(f"the pydicom loop itself fails on it: {type(exc).__name__}")
    assert_same_json(dataset_json(fast_ds), reference)
    # what the fast path leaves behind still reads as pydicom would read it
    assert_same_json(reference_json(fast_ds), reference)


def read_file(path: str | Path, **kwargs: Any) -> Any:
    return lambda: pydicom.dcmread(path, stop_before_pixels=True, force=True, **kwargs)


# --- every file pydicom ships, and the real corpus -------------------------------------------


def _pydicom_files() -> list[Any]:
    paths = sorted(get_testdata_files()) + sorted(get_charset_files())
    paths = [path for path in paths if Path(path).is_file()]
    return [pytest.param(path, id=str(Path(path).relative_to(DATA_ROOT))) for path in paths]


@pytest.mark.parametrize("path", _pydicom_files())
def test_every_pydicom_test_file_matches_pydicom(path):
    assert_matches_pydicom(read_file(path))


CORPUS = [row["file"] for row in corpus_rows()] or ["<corpus absent>"]


@pytest.mark.corpus
@pytest.mark.parametrize("filename", CORPUS)
def test_every_corpus_file_matches_pydicom(filename, corpus):
    assert_matches_pydicom(read_file(corpus / filename))


def test_deferred_values_match_pydicom():
    assert_matches_pydicom(read_file(pydicom.examples.get_path("ct"), defer_size=16))


def test_the_fast_path_leaves_elements_raw_and_readable():
    ds = pydicom.dcmread(pydicom.examples.get_path("ct"), stop_before_pixels=True)
    header = dataset_json(ds)
    assert header["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert header["00280030"] == {"vr": "DS", "Value": [0.661468, 0.661468]}
    assert isinstance(ds._dict[0x00100010], RawDataElement)
    assert isinstance(ds.PatientName, PersonName)
    assert ds.PixelSpacing == [0.661468, 0.661468]


def test_bulk_threshold_and_marker_are_passed_on():
    def marker(elem: Any) -> str:
        return f"https://example.org/{elem.tag:08X}"

    read = read_file(pydicom.examples.get_path("ct"))
    fast = dataset_json(read(), bulk_threshold=100, bulk_marker=marker)
    assert_same_json(fast, reference_json(read(), threshold=100, marker=marker))
    assert fast["00431029"] == {"vr": "OB", "BulkDataURI": "https://example.org/00431029"}


# --- hand-made datasets ------------------------------------------------------------------

LE = {"implicit": False, "little": True}
LONG_HEADER_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def encode(elements: list[tuple[int, str, bytes]], *, implicit: bool, little: bool) -> bytes:
    """Encode (tag, VR, value bytes) as a dataset body in the given transfer syntax."""
    order = "<" if little else ">"
    body = b""
    for tag, vr, value in elements:
        group, element = tag >> 16, tag & 0xFFFF
        if implicit:
            header = struct.pack(f"{order}HHI", group, element, len(value))
        elif vr in LONG_HEADER_VRS:
            header = struct.pack(f"{order}HH2sHI", group, element, vr.encode(), 0, len(value))
        else:
            header = struct.pack(f"{order}HH2sH", group, element, vr.encode(), len(value))
        body += header + value
    return body


def assert_elements_match(
    elements: list[tuple[int, str, bytes]], *, implicit: bool = False, little: bool = True
) -> dict:
    """Read the encoded elements as pydicom reads a file body; compare; give the JSON."""
    data = encode(elements, implicit=implicit, little=little)
    read = lambda: read_dataset(io.BytesIO(data), implicit, little)  # noqa: E731
    assert_matches_pydicom(read)
    return dataset_json(read())


def sequence(tag: int, items: list[bytes]) -> tuple[int, str, bytes]:
    """An explicit VR little endian SQ element of defined length."""
    encoded = b"".join(struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item for item in items)
    return (tag, "SQ", encoded)


SLICE_THICKNESS, INSTANCE_NUMBER = 0x00180050, 0x00200013

DS_VALUES = [
    b"1.5", b" 1.5 ", b"1.0", b"-0", b"+.5E-2", b"1e3", b"  5 ", b"0.5\x00", b"\x00",
    b"1\\2\\3", b" 1 \\ 2 \\3  ", b"1\\\\2", b"\\", b"1\\", b"", b"    ", b"1.5\t",
    b"nan", b"inf", b"1e400", b"1,5", b"abc", b"1_0", b"1 2", b"0x10",
]  # fmt: skip

IS_VALUES = [
    b"5", b"  5 ", b"-0", b"+12", b"007", b"1.0", b"1e3", b"1.5", b"2147483648",
    b"99999999999999999999", b"123456789012345678.0", b"1\\2\\3", b" 1 \\ -2 ", b"1\\\\2",
    b"1\\", b"", b"  ", b"\t", b"nan", b"inf", b"1e400", b"abc", b"1_0", b"0x10",
]  # fmt: skip


@pytest.mark.parametrize("value", DS_VALUES, ids=repr)
def test_decimal_strings_match_pydicom(value):
    assert_elements_match([(SLICE_THICKNESS, "DS", value)])


@pytest.mark.parametrize("value", IS_VALUES, ids=repr)
def test_integer_strings_match_pydicom(value):
    assert_elements_match([(INSTANCE_NUMBER, "IS", value)])


def test_numbers_keep_their_json_types():
    header = assert_elements_match(
        [(SLICE_THICKNESS, "DS", b" 1 \\2.50\\-0 "), (INSTANCE_NUMBER, "IS", b" 1.0\\1e2")]
    )
    assert json.dumps(header["00180050"]["Value"]) == "[1.0, 2.5, -0.0]"
    assert json.dumps(header["00200013"]["Value"]) == "[1, 100]"


PN_VALUES = [
    b"Doe^John", b"Doe^John=Ideo^Graphic=Pho^Netic", b"Doe^John==Pho^Netic", b"=Ideo",
    b"A=B=C=D", b"==", b"Doe^John^^^", b"Doe\\Roe^Jane", b"Doe\\\\Roe", b"Doe\\", b"  ",
    b"Doe^John \x00", b"",
]  # fmt: skip


@pytest.mark.parametrize("value", PN_VALUES, ids=repr)
def test_person_names_match_pydicom(value):
    assert_elements_match([(0x00100010, "PN", value)])


def test_three_component_groups_are_named_as_pydicom_names_them():
    header = assert_elements_match([(0x00100010, "PN", b"Yamada^Tarou=YAMADA=yamada")])
    assert header["00100010"]["Value"] == [
        {"Alphabetic": "Yamada^Tarou", "Ideographic": "YAMADA", "Phonetic": "yamada"}
    ]


TEXT_ELEMENTS = [
    (0x00080005, "CS", b"ISO_IR 100"),
    (0x00080008, "CS", b"ORIGINAL\\PRIMARY\\AXIAL "),
    (0x00080016, "UI", b"1.2.840.10008.5.1.4.1.1.2\x00"),
    (0x00080018, "UI", b"1.2.3\\ 4.5 \x00"),
    (0x00080020, "DA", b"20200101"),
    (0x00080021, "DA", b""),
    (0x00080030, "TM", b"101010.123 "),
    (0x0008002A, "DT", b"20200101120000.5+0100"),
    (0x00080054, "AE", b" STORE1 \\ STORE2"),
    (0x00080070, "LO", b"Acme\\ Imaging \\\x00"),
    (0x00080080, "LO", b"   "),
    (0x00080090, "PN", b"Referring^Doctor"),
    (0x00081010, "SH", b" CT01 "),
    (0x00081030, "LO", b"Study \\ with backslash "),
    (0x00101010, "AS", b"030Y"),
    (0x00104000, "LT", b"line one\\line two \r\n  "),
    (0x00180015, "CS", b"HEAD "),
    (0x00180022, "CS", b"\\ "),  # two empty values are two values
    (0x00400275, "UC", b"first\\second \x00"),
    (0x00081190, "UR", b"https://example.org/studies/1  "),
    (0x0040A160, "UT", b"free text\\with a backslash\x00"),
    (0x00324000, "LT", b""),
    (0x00204000, "LT", b"\x00\x00"),
]
NUMBER_ELEMENTS_LE = [
    (0x00280010, "US", struct.pack("<H", 512)),
    (0x00280011, "US", struct.pack("<3H", 1, 2, 65535)),
    (0x00280106, "SS", struct.pack("<h", -1024)),
    (0x00280107, "SS", b""),
    (0x00189219, "SL", struct.pack("<2l", -5, 7)),
    (0x00280008, "IS", b"1 "),
    (0x00181310, "US", b"\x01\x00\x02"),  # odd length: left out, or UN (lightbox settings)
    (0x00189305, "FD", struct.pack("<d", 0.1)),
    (0x00189306, "FL", struct.pack("<2f", 1.5, -0.1)),
    (0x00189307, "UL", struct.pack("<L", 4294967295)),
]


def test_text_values_match_pydicom():
    assert_elements_match(TEXT_ELEMENTS)


def test_explicit_vr_little_endian_matches_pydicom():
    header = assert_elements_match(TEXT_ELEMENTS + NUMBER_ELEMENTS_LE)
    assert header["00280011"] == {"vr": "US", "Value": [1, 2, 65535]}
    assert header["00080054"] == {"vr": "AE", "Value": ["STORE1", "STORE2"]}


def test_explicit_vr_big_endian_matches_pydicom():
    big = [(tag, vr, _to_big_endian(vr, value)) for tag, vr, value in NUMBER_ELEMENTS_LE]
    header = assert_elements_match(TEXT_ELEMENTS + big, little=False)
    assert header["00280106"] == {"vr": "SS", "Value": [-1024]}
    assert header["00189306"]["Value"] == list(struct.unpack("<2f", struct.pack("<2f", 1.5, -0.1)))


def _to_big_endian(vr: str, value: bytes) -> bytes:
    codes = {"US": "H", "SS": "h", "SL": "l", "UL": "L", "FL": "f", "FD": "d"}
    code = codes.get(vr)
    if code is None or len(value) % struct.calcsize(f"<{code}"):
        return value
    count = len(value) // struct.calcsize(f"<{code}")
    return struct.pack(f">{count}{code}", *struct.unpack(f"<{count}{code}", value))


def test_implicit_vr_little_endian_matches_pydicom():
    elements = TEXT_ELEMENTS + NUMBER_ELEMENTS_LE + [
        (0x00091010, "??", b"private, VR unknown"),
        (0x00280103, "US", struct.pack("<H", 1)),
        (0x00281050, "DS", b"40\\400"),
        (0x00283010, "??", b""),  # an implicit SQ, empty
        (0x00289999, "??", b"unknown public tag"),
    ]  # fmt: skip
    assert_elements_match(sorted(elements), implicit=True)


def test_ambiguous_and_lut_descriptor_elements_match_pydicom():
    assert_elements_match(
        [
            (0x00280103, "US", struct.pack("<H", 1)),
            (0x00281101, "SS", struct.pack("<3h", -256, -32768, 16)),  # LUT descriptor
            (0x00283002, "US", struct.pack("<3H", 4096, 0, 12)),
        ]
    )
    implicit = [
        (0x00280100, "US", struct.pack("<H", 16)),
        (0x00280103, "US", struct.pack("<H", 1)),
        (0x00280106, "US or SS", struct.pack("<h", -2000)),  # VR from Pixel Representation
        (0x00281101, "US or SS", struct.pack("<3h", -256, 0, 16)),
    ]
    assert_elements_match(implicit, implicit=True)


def test_private_elements_match_pydicom():
    assert_elements_match(
        [
            (0x00090010, "LO", b"ACME 1.0"),
            (0x00091001, "SS", struct.pack("<h", -7)),
            (0x00091002, "DS", b"1.5\\2"),
            (0x00110010, "US", b"\x01\x00\x02"),  # a creator pydicom cannot read ...
            (0x00111001, "LO", b"under a broken creator"),  # ... so this is left out too
            (0x00130010, "LO", b"Cr\xe9ateur"),
            (0x00131001, "SH", b"under a non-ASCII creator"),
            (0x00151001, "SH", b"no creator at all"),
        ]
    )


def test_sequences_match_pydicom_and_one_bad_item_value_drops_the_sequence():
    good = encode([(0x00081150, "UI", b"1.2.3\x00"), (0x00200013, "IS", b" 4 ")], **LE)
    bad = encode([(0x00200013, "IS", b"1\\\\2")], **LE)
    header = assert_elements_match(
        [
            (0x00080005, "CS", b"ISO_IR 100"),
            sequence(0x00081140, [good, good]),
            sequence(0x00081155, []),
            sequence(0x00082112, [good, bad]),
            (0x00100010, "PN", b"After^Sequences"),
        ]
    )
    assert header["00081140"]["Value"][1]["00200013"] == {"vr": "IS", "Value": [4]}
    assert "00082112" not in header


def test_nested_sequences_match_pydicom():
    assert_elements_match([_nested(depth=40)])


def test_sequences_nested_too_deep_raise_recursion_error_like_pydicom():
    data = encode([_nested(depth=3000)], **LE)
    with pytest.raises(RecursionError):
        reference_json(read_dataset(io.BytesIO(data), False, True))
    with pytest.raises(RecursionError):
        dataset_json(read_dataset(io.BytesIO(data), False, True))


def _nested(depth: int) -> tuple[int, str, bytes]:
    element = (0x00080100, "SH", b"LEAF")
    for _ in range(depth):
        element = sequence(0x0040A730, [encode([element], **LE)])
    return element


# --- character sets -----------------------------------------------------------------------


CHARSET_CASES = {
    "utf-8": (b"ISO_IR 192", "Müller^Jürgen".encode()),
    "latin-1": (b"ISO_IR 100", "Müller^Jürgen".encode("latin-1")),
    "latin-1, ascii": (b"ISO_IR 100", b"Muller^Jurgen"),
    "default, non-ascii": (b"", "Müller".encode("latin-1")),
    "iso 2022 escapes": (
        b"\\ISO 2022 IR 87",
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
    ),
    "iso 2022, ascii": (b"\\ISO 2022 IR 87", b"Yamada^Tarou"),
    "shift_jis, ascii": (b"ISO_IR 13", b"Yamada^Tarou"),
    "greek": (b"ISO_IR 126", "Διονυσιος".encode("iso8859_7")),
    "gb18030": (b"GB18030", "王^小东".encode("gb18030")),
    "unknown": (b"ISO_IR 999", b"Doe^John"),
    "a python codec, not ascii-compatible": (b"utf_16", b"Doe^John"),
    "ebcdic": (b"cp500", b"Doe^John"),
}


@pytest.mark.parametrize("charset, name", CHARSET_CASES.values(), ids=CHARSET_CASES.keys())
def test_character_sets_match_pydicom(charset, name):
    header = assert_elements_match(
        [
            (0x00080005, "CS", charset),
            (0x00080070, "LO", name.split(b"^")[0]),
            (0x00100010, "PN", name),
            (0x00104000, "LT", name + b"\r\n"),
        ]
    )
    assert "00100010" in header


def test_non_ascii_names_go_through_pydicom_and_ascii_ones_do_not():
    data = encode(
        [
            (0x00080005, "CS", b"ISO_IR 192"),
            (0x00100010, "PN", "Müller^Jürgen".encode()),
            (0x00100020, "LO", b"ID-42"),
        ],
        **LE,
    )
    ds = read_dataset(io.BytesIO(data), False, True)
    header = dataset_json(ds)
    assert header["00100010"]["Value"] == [{"Alphabetic": "Müller^Jürgen"}]
    assert isinstance(ds._dict[0x00100010], DataElement)  # converted by pydicom
    assert isinstance(ds._dict[0x00100020], RawDataElement)  # read by the fast path


def test_every_encoding_the_fast_path_trusts_reads_ascii_as_ascii():
    ascii_bytes = bytes(code for code in range(128) if code != 0x1B)
    for encoding in ASCII_COMPATIBLE_ENCODINGS:
        assert ascii_bytes.decode(encoding) == ascii_bytes.decode("ascii"), encoding


# --- pydicom settings that change its answer ---------------------------------------------


TOO_LONG_LO = (0x00081090, "LO", b"x" * 70)  # LO holds 64 characters: pydicom warns


def test_raise_validation_mode_matches_pydicom(monkeypatch):
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.RAISE)
    header = assert_elements_match(sorted([*TEXT_ELEMENTS, *NUMBER_ELEMENTS_LE, TOO_LONG_LO]))
    assert "00081090" not in header


def test_warnings_turned_into_errors_match_pydicom(monkeypatch):
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.WARN)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        header = assert_elements_match([TOO_LONG_LO, (0x00100010, "PN", b"Doe^John")])
    assert "00081090" not in header
    assert "00100010" in header


@pytest.mark.parametrize(
    "setting", ["datetime_conversion", "use_none_as_empty_text_VR_value", "use_IS_numpy"]
)
def test_other_pydicom_settings_match_pydicom(monkeypatch, setting):
    monkeypatch.setattr(config, setting, True)
    assert_elements_match([*TEXT_ELEMENTS, (INSTANCE_NUMBER, "IS", b"1\\2")])
