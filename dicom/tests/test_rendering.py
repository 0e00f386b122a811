"""The one renderer, proven against independent numpy renderings of real files.

Core tests use the files that ship inside pydicom, so they run anywhere; the corpus tests
walk every row of ``../shared/dicom-samples/MANIFEST.tsv`` and skip (with the reason) when the
corpus is absent. No test needs the database.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.conf import settings
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicom.errors import InvalidDicomFile, LightboxError, NoPixelData, PixelDataUndecodable
from dicom.rendering import (
    FrameOutOfRange,
    UnsupportedImageFormat,
    frame_count,
    frame_pixels,
    frame_render,
    media_type,
    window_default,
)

# --- helpers -------------------------------------------------------------------------------


def _testdata(name: str) -> str:
    return str(get_testdata_file(name))


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written piecewise on purpose (the renderer uses a clip)."""
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    middle = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.where(values <= low, 0.0, np.where(values > high, 255.0, middle))


def _linear_exact(values: np.ndarray, center: float, width: float) -> np.ndarray:
    middle = ((values - center) / width + 0.5) * 255
    low, high = center - width / 2, center + width / 2
    return np.where(values <= low, 0.0, np.where(values > high, 255.0, middle))


def _image_dataset(pixels: np.ndarray, **attributes: Any) -> Dataset:
    """A minimal in-memory MONOCHROME2 secondary capture holding ``pixels`` (uint16)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.set_pixel_data(pixels.astype(np.uint16), "MONOCHROME2", 16)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


RAMP = np.arange(0, 1000, 4, dtype=np.uint16).reshape(10, 25)


# --- the corpus ----------------------------------------------------------------------------

SAMPLES_DIR = Path(settings.LIGHTBOX_SAMPLES_DIR)
MISSING = f"dicom-samples corpus not found at {SAMPLES_DIR} (set LIGHTBOX_SAMPLES_DIR)"


def _manifest() -> list[dict[str, str]]:
    manifest = SAMPLES_DIR / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _params(predicate: Any) -> list[Any]:
    rows = [pytest.param(row, id=row["file"]) for row in _manifest() if predicate(row)]
    return rows or [pytest.param(None, marks=pytest.mark.skip(reason=MISSING))]


def _undecodable(row: dict[str, str]) -> bool:
    return row["needs_plugin"].startswith("none worked")


# badVR.dcm: pydicom refuses its Number of Frames '1A'; the renderer counts it as 1 frame and
# decodes it, so it is tested on its own below rather than as an undecodable file.
IMAGE_ROWS = _params(lambda r: r["pixel_element"] != "none" and not _undecodable(r))
UNDECODABLE_ROWS = _params(lambda r: _undecodable(r) and r["file"] != "badVR.dcm")
NON_IMAGE_ROWS = _params(lambda r: r["pixel_element"] == "none")


def _sample(row: dict[str, str] | None) -> Path:
    if row is None or not SAMPLES_DIR.is_dir():
        pytest.skip(MISSING)
    return SAMPLES_DIR / row["file"]


def _group_item(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    for groups, index in (
        (ds.get("PerFrameFunctionalGroupsSequence"), frame),
        (ds.get("SharedFunctionalGroupsSequence"), 0),
    ):
        if groups and keyword in groups[index]:
            return groups[index][keyword][0]
    return None


def _first(value: Any) -> float:
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def _reference_gray(ds: Dataset, stored: np.ndarray, frame: int) -> np.ndarray:
    """Rescale, window and MONOCHROME1 inversion in plain numpy, from the header."""
    rescale = _group_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope = float(rescale.get("RescaleSlope", 1) or 1)
    intercept = float(rescale.get("RescaleIntercept", 0) or 0)
    values = stored.astype(np.float64) * slope + intercept
    voi = ds if "WindowWidth" in ds else _group_item(ds, frame, "FrameVOILUTSequence")
    is_float = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if voi is not None:
        center, width = _first(voi.WindowCenter), _first(voi.WindowWidth)
        window = _linear_exact if is_float else _linear
        gray = window(values, center, width)
    elif values.max() > values.min():
        gray = (values - values.min()) / (values.max() - values.min()) * 255
    else:
        gray = np.zeros_like(values)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        gray = 255 - gray
    return np.clip(np.rint(gray), 0, 255)


def _reference_colour(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    photometric = ds.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(stored, ds)
        return rgb >> 8 if rgb.dtype == np.uint16 else rgb
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        stored = convert_color_space(stored, "YBR_FULL", "RGB")
    if stored.dtype != np.uint8:
        return np.rint(stored / (2**ds.BitsStored - 1) * 255)
    return stored


def _reference_frames(path: Path) -> tuple[Dataset, np.ndarray]:
    """pydicom's whole-dataset ``pixel_array``, YBR left as stored (raw), frames first."""
    ds = pydicom.dcmread(path, force=True)
    ds.pixel_array_options(raw=True)
    frames = ds.pixel_array
    return ds, frames[np.newaxis] if frame_count(ds) == 1 else frames


@pytest.mark.corpus
@pytest.mark.parametrize("row", IMAGE_ROWS)
def test_every_decodable_sample_matches_an_independent_numpy_rendering(row):
    path = _sample(row)
    ds, frames = _reference_frames(path)
    assert len(frames) == frame_count(ds) == int(row["frames"] or 1)
    for frame, stored in enumerate(frames):
        rendered = _decoded(frame_render(source=path, frame=frame))
        colour = stored.ndim == 3 or ds.PhotometricInterpretation == "PALETTE COLOR"
        expected = _reference_colour(ds, stored) if colour else _reference_gray(ds, stored, frame)
        assert rendered.shape == expected.shape
        assert _mean_abs_diff(rendered, expected) <= 1.5, f"{row['file']} frame {frame}"


@pytest.mark.corpus
@pytest.mark.parametrize("row", IMAGE_ROWS)
def test_every_decodable_sample_fits_the_requested_size(row):
    path = _sample(row)
    rows, columns = (int(v) for v in row["rows_x_cols"].split("x"))
    image = Image.open(io.BytesIO(frame_render(source=path, size=(48, 32))))
    assert image.format == "PNG"
    scale = min(48 / columns, 32 / rows, 1.0)
    assert image.size == (max(1, round(columns * scale)), max(1, round(rows * scale)))


@pytest.mark.corpus
@pytest.mark.parametrize("row", UNDECODABLE_ROWS)
def test_undecodable_samples_raise_422_or_415(row):
    path = _sample(row)
    with pytest.raises((PixelDataUndecodable, NoPixelData)) as caught:
        frame_render(source=path)
    assert caught.value.status in (415, 422)


@pytest.mark.corpus
@pytest.mark.parametrize("row", NON_IMAGE_ROWS)
def test_non_image_samples_raise_415(row):
    path = _sample(row)
    with pytest.raises(NoPixelData) as caught:
        frame_render(source=path)
    assert caught.value.status == 415


@pytest.mark.corpus
def test_truncated_and_imageless_samples_answer_422_and_415(corpus):
    with pytest.raises(PixelDataUndecodable, match=r"Explicit VR Little Endian .*cannot be"):
        frame_render(source=corpus / "MR_truncated.dcm")
    with pytest.raises(NoPixelData, match="Rows"):
        frame_render(source=corpus / "nested_priv_SQ.dcm")


@pytest.mark.corpus
def test_a_sample_with_an_invalid_number_of_frames_renders_one_frame(corpus):
    path = corpus / "badVR.dcm"
    assert frame_count(pydicom.dcmread(path, stop_before_pixels=True)) == 1
    assert _decoded(frame_render(source=path)).shape == (10, 10)
    with pytest.raises(FrameOutOfRange):
        frame_render(source=path, frame=1)


@pytest.mark.corpus
def test_enhanced_ct_takes_window_and_rescale_from_its_functional_groups(corpus):
    path = corpus / "eCT_Supplemental.dcm"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert window_default(ds, 1) == (49.0, 102.0)
    raw = pydicom.dcmread(path).pixel_array[1]
    assert np.array_equal(frame_pixels(source=path, frame=1), raw.astype(np.float32) - 1024)


@pytest.mark.corpus
def test_monochrome1_samples_are_shown_inverted(corpus):
    path = corpus / "dx_image.dcm"  # MONOCHROME1, window 128/256 in the file
    ds = pydicom.dcmread(path)
    rendered = _decoded(frame_render(source=path)).astype(np.float64)
    assert _mean_abs_diff(rendered, 255 - _linear(ds.pixel_array.astype(float), 128, 256)) < 1


@pytest.mark.corpus
def test_jpeg_ybr_samples_are_converted_once(corpus):
    ybr = _decoded(frame_render(source=corpus / "SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL JPEG
    rgb = _decoded(frame_render(source=corpus / "SC_rgb_jpeg_gdcm.dcm"))  # lossless RGB
    assert _mean_abs_diff(ybr, rgb) < 3


# --- core: modality LUT then VOI LUT ------------------------------------------------------


def test_ct_is_windowed_after_rescale():
    path = _testdata("CT_small.dcm")  # Rescale Intercept -1024, slope 1
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    hu = frame_pixels(source=path)
    assert hu.dtype == np.float32
    assert np.array_equal(hu, stored - 1024)
    rendered = _decoded(frame_render(source=path, window=(40, 400)))
    assert np.array_equal(rendered, np.clip(np.rint(_linear(stored - 1024, 40, 400)), 0, 255))
    # Windowing the stored values instead would give another (wrong) image.
    assert _mean_abs_diff(rendered, np.rint(_linear(stored, 40, 400))) > 20


def test_a_pixel_of_known_hounsfield_value_gets_the_formula_gray_level():
    path = _testdata("CT_small.dcm")
    hu = frame_pixels(source=path)
    row, column = np.argwhere((hu > -100) & (hu < 100))[0]
    value = float(hu[row, column])
    rendered = _decoded(frame_render(source=path, window=(0, 201)))
    assert rendered[row, column] == round(((value + 0.5) / 200 + 0.5) * 255)


def test_the_file_window_is_used_when_none_is_requested():
    path = _testdata("MR_small.dcm")  # Window Center 600, Width 1600
    ds = pydicom.dcmread(path)
    assert window_default(ds) == (600.0, 1600.0)
    expected = np.rint(_linear(ds.pixel_array.astype(np.float64), 600, 1600))
    assert np.array_equal(_decoded(frame_render(source=path)), expected)


def test_a_requested_window_overrides_the_file_window():
    path = _testdata("MR_small.dcm")
    values = pydicom.dcmread(path).pixel_array.astype(np.float64)
    rendered = _decoded(frame_render(source=path, window=(1000, 500)))
    assert np.array_equal(rendered, np.rint(_linear(values, 1000, 500)))


def test_window_default_takes_the_first_of_several_values():
    ds = _image_dataset(RAMP, WindowCenter=[40, 300], WindowWidth=[400, 1500])
    assert window_default(ds) == (40.0, 400.0)
    assert window_default(_image_dataset(RAMP)) is None
    assert window_default(_image_dataset(RAMP, WindowCenter=40, WindowWidth=0)) is None


def test_min_max_is_used_when_the_file_has_no_window():
    rendered = _decoded(frame_render(source=_image_dataset(RAMP)))
    assert rendered.min() == 0 and rendered.max() == 255
    assert np.array_equal(rendered, np.rint(_linear_exact(RAMP.astype(float), 498, 996)))


def test_linear_exact_and_sigmoid_voi_functions_are_applied():
    exact = _image_dataset(RAMP, WindowCenter=500, WindowWidth=400, VOILUTFunction="LINEAR_EXACT")
    expected = np.rint(_linear_exact(RAMP.astype(float), 500, 400))
    assert np.array_equal(_decoded(frame_render(source=exact)), expected)
    sigmoid = _image_dataset(RAMP, WindowCenter=500, WindowWidth=400, VOILUTFunction="SIGMOID")
    expected = np.rint(255 / (1 + np.exp(-4 * (RAMP.astype(float) - 500) / 400)))
    assert np.abs(_decoded(frame_render(source=sigmoid)) - expected).max() <= 1


def test_a_voi_lut_sequence_is_applied_when_there_is_no_window():
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = list(range(255, -1, -1))  # an inverting LUT over stored values 0..255
    ds = _image_dataset(RAMP // 4, VOILUTSequence=[item])
    expected = 255 - np.clip(RAMP // 4, 0, 255)
    assert np.array_equal(_decoded(frame_render(source=ds)), expected)


def test_a_modality_lut_sequence_replaces_the_rescale():
    item = Dataset()
    item.LUTDescriptor = [1000, 0, 16]
    item.ModalityLUTType = "HU"
    item.LUTData = [2 * v for v in range(1000)]
    ds = _image_dataset(RAMP, ModalityLUTSequence=[item], RescaleSlope=5)
    assert np.array_equal(frame_pixels(source=ds), RAMP.astype(np.float32) * 2)


def test_enhanced_multi_frame_reads_the_frame_functional_groups():
    frames = np.stack([RAMP, RAMP + 100])
    ds = _image_dataset(frames)
    voi, rescale, shared, first, second = (Dataset() for _ in range(5))
    voi.WindowCenter, voi.WindowWidth = 300, 200
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = 2, -100, "US"
    shared.PixelValueTransformationSequence = [rescale]
    second_voi = Dataset()
    second_voi.WindowCenter, second_voi.WindowWidth = 700, 100
    first.FrameVOILUTSequence, second.FrameVOILUTSequence = [voi], [second_voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [first, second]
    assert window_default(ds, 0) == (300.0, 200.0)
    assert window_default(ds, 1) == (700.0, 100.0)
    values = frames[1].astype(np.float64) * 2 - 100
    assert np.array_equal(frame_pixels(source=ds, frame=1), values)
    expected = np.rint(_linear(values, 700, 100))
    assert np.array_equal(_decoded(frame_render(source=ds, frame=1)), expected)


# --- core: photometric interpretations and pixel layouts -----------------------------------


def test_monochrome1_is_shown_inverted():
    mono2 = pydicom.dcmread(_testdata("MR_small.dcm"))
    mono1 = pydicom.dcmread(_testdata("MR_small.dcm"))
    mono1.PhotometricInterpretation = "MONOCHROME1"
    gray2 = _decoded(frame_render(source=mono2)).astype(int)
    assert np.array_equal(_decoded(frame_render(source=mono1)), 255 - gray2)


def test_the_invert_option_flips_the_displayed_gray_levels():
    path = _testdata("MR_small.dcm")
    plain = _decoded(frame_render(source=path)).astype(int)
    assert np.array_equal(_decoded(frame_render(source=path, invert=True)), 255 - plain)


def test_ybr_is_converted_and_not_treated_as_rgb():
    ybr_path = _testdata("SC_ybr_full_422_uncompressed.dcm")
    rendered = _decoded(frame_render(source=ybr_path))
    rgb = _decoded(frame_render(source=_testdata("SC_rgb_rle.dcm")))  # same picture, RGB
    assert _mean_abs_diff(rendered, rgb) < 2
    ds = pydicom.dcmread(ybr_path)
    ds.pixel_array_options(raw=True)
    assert _mean_abs_diff(ds.pixel_array, rgb) > 20  # what treating YBR as RGB would show


def test_palette_colour_is_expanded_through_the_palette():
    path = _testdata("examples_palette.dcm")  # 16-bit palette entries
    ds = pydicom.dcmread(path)
    rendered = _decoded(frame_render(source=path))
    assert rendered.shape == (*ds.pixel_array.shape, 3)
    assert _mean_abs_diff(rendered, apply_color_lut(ds.pixel_array, ds) >> 8) < 1
    assert frame_pixels(source=path).dtype == np.uint16


def test_planar_configuration_one_big_endian_rgb_is_interleaved():
    path = _testdata("ExplVR_BigEnd.dcm")  # RGB, Planar Configuration 1, big endian
    ds = pydicom.dcmread(path)
    assert ds.PlanarConfiguration == 1
    planes = np.frombuffer(ds.PixelData, dtype=np.uint8)[: 3 * ds.Rows * ds.Columns]
    expected = planes.reshape(3, ds.Rows, ds.Columns).transpose(1, 2, 0)
    assert np.array_equal(_decoded(frame_render(source=path)), expected)
    rendered = _decoded(frame_render(source=path))
    assert rendered.shape == (ds.Rows, ds.Columns, 3)  # (height, width): not swapped


def test_sixteen_bit_rgb_is_scaled_by_bits_stored():
    path = _testdata("SC_rgb_rle_16bit.dcm")
    ds = pydicom.dcmread(path)
    expected = np.rint(ds.pixel_array / (2**ds.BitsStored - 1) * 255)
    assert np.array_equal(_decoded(frame_render(source=path)), expected)


def test_one_bit_segmentation_renders_black_and_white():
    rendered = _decoded(frame_render(source=_testdata("liver_1frame.dcm")))
    assert set(np.unique(rendered)) == {0, 255}


def test_thirty_two_bit_dose_is_decoded():
    path = _testdata("rtdose_1frame.dcm")
    values = frame_pixels(source=path)
    assert np.array_equal(values, pydicom.dcmread(path).pixel_array.astype(np.float32))
    assert _decoded(frame_render(source=path)).shape == values.shape


def test_a_multi_frame_colour_image_returns_the_requested_frame():
    path = _testdata("examples_ybr_color.dcm")  # 30 frames, JPEG baseline YBR_FULL_422
    ds = pydicom.dcmread(path)
    assert frame_count(ds) == 30
    rendered = _decoded(frame_render(source=path, frame=5))
    assert _mean_abs_diff(rendered, ds.pixel_array[5]) < 1.5
    assert _mean_abs_diff(rendered, ds.pixel_array[0]) > _mean_abs_diff(rendered, ds.pixel_array[5])


def test_only_the_requested_frame_is_decoded(monkeypatch):
    import pydicom.pixels

    calls: list[Any] = []
    original = pydicom.pixels.pixel_array

    def spy(src: Any, **kwargs: Any) -> np.ndarray:
        calls.append(kwargs.get("index"))
        return original(src, **kwargs)

    monkeypatch.setattr(pydicom.pixels, "pixel_array", spy)
    pixels = frame_pixels(source=_testdata("examples_ybr_color.dcm"), frame=7)
    assert calls == [7]
    assert pixels.shape == (240, 320, 3)


# --- core: sources, sizes and encodings ----------------------------------------------------


def test_paths_file_objects_and_datasets_render_the_same():
    path = _testdata("CT_small.dcm")
    from_path = frame_render(source=path)
    with open(path, "rb") as fh:
        fh.seek(0)
        assert frame_render(source=fh) == from_path
        assert fh.tell() == 0
    assert frame_render(source=Path(path)) == from_path
    assert frame_render(source=pydicom.dcmread(path)) == from_path


def test_an_invalid_number_of_frames_counts_as_one_and_the_dataset_is_left_alone():
    ds = pydicom.dcmread(_testdata("badVR.dcm"))
    assert ds.NumberOfFrames == "1A"
    assert frame_count(ds) == 1
    assert _decoded(frame_render(source=ds)).shape == (10, 10)
    assert ds.NumberOfFrames == "1A"


def test_the_size_is_a_box_the_image_fits_in_keeping_its_aspect():
    path = _testdata("examples_ybr_color.dcm")  # 320 wide, 240 high
    assert Image.open(io.BytesIO(frame_render(source=path, size=(160, 200)))).size == (160, 120)
    assert Image.open(io.BytesIO(frame_render(source=path, size=(400, 60)))).size == (80, 60)
    assert Image.open(io.BytesIO(frame_render(source=path, size=(999, 999)))).size == (320, 240)


@pytest.mark.parametrize(
    ("fmt", "pil_format", "media"),
    [
        ("png", "PNG", "image/png"),
        ("JPEG", "JPEG", "image/jpeg"),
        ("jpg", "JPEG", "image/jpeg"),
        ("gif", "GIF", "image/gif"),
        ("webp", "WEBP", "image/webp"),
    ],
)
def test_each_format_is_encoded_and_named(fmt, pil_format, media):
    for name in ("CT_small.dcm", "SC_rgb_rle.dcm"):
        data = frame_render(source=_testdata(name), fmt=fmt, quality=80)
        image = Image.open(io.BytesIO(data))
        assert image.format == pil_format
        assert image.size == (128, 128) if name == "CT_small.dcm" else (100, 100)
    assert media_type(fmt) == media


def test_jpeg_quality_changes_the_encoding():
    path = _testdata("CT_small.dcm")
    low = frame_render(source=path, fmt="jpeg", quality=10)
    assert len(low) < len(frame_render(source=path, fmt="jpeg", quality=95))


# --- core: errors --------------------------------------------------------------------------


def test_an_unknown_format_is_a_400():
    with pytest.raises(UnsupportedImageFormat, match="tiff") as caught:
        frame_render(source=_testdata("CT_small.dcm"), fmt="tiff")
    assert caught.value.status == 400
    with pytest.raises(UnsupportedImageFormat):
        media_type("bmp")


@pytest.mark.parametrize("frame", [1, -1, 30])
def test_a_frame_out_of_range_is_a_400(frame):
    with pytest.raises(FrameOutOfRange, match="out of range") as caught:
        frame_render(source=_testdata("CT_small.dcm"), frame=frame)
    assert caught.value.status == 400
    assert caught.value.code == "frame_out_of_range"


@pytest.mark.parametrize(
    "options",
    [{"size": (0, 10)}, {"size": (10,)}, {"quality": 0}, {"quality": 101}, {"window": (40, 0)}],
)
def test_invalid_render_options_are_a_400(options):
    with pytest.raises(LightboxError) as caught:
        frame_render(source=_testdata("CT_small.dcm"), **options)
    assert caught.value.status == 400


def test_frames_larger_than_the_render_limit_are_refused(settings):
    settings.LIGHTBOX_MAX_RENDER_PIXELS = 128 * 128 - 1
    with pytest.raises(PixelDataUndecodable, match="render limit") as caught:
        frame_render(source=_testdata("CT_small.dcm"))
    assert caught.value.status == 422


def test_truncated_pixel_data_is_a_422():
    with pytest.raises(PixelDataUndecodable, match="cannot be decoded") as caught:
        frame_pixels(source=_testdata("MR_truncated.dcm"))
    assert caught.value.status == 422


def test_a_decoder_failure_is_a_422_naming_the_transfer_syntax(monkeypatch):
    import pydicom.pixels

    def missing_plugin(src: Any, **kwargs: Any) -> np.ndarray:
        raise RuntimeError("all plugins are missing dependencies")

    monkeypatch.setattr(pydicom.pixels, "pixel_array", missing_plugin)
    with pytest.raises(PixelDataUndecodable, match=r"JPEG Extended .*missing dependencies"):
        frame_render(source=_testdata("JPGExtended.dcm"))


def test_pixel_data_without_rows_and_columns_is_a_415():
    with pytest.raises(NoPixelData) as caught:
        frame_render(source=_testdata("nested_priv_SQ.dcm"))
    assert caught.value.status == 415


def test_a_dataset_without_pixel_data_is_a_415():
    with pytest.raises(NoPixelData):
        frame_render(source=_testdata("rtplan.dcm"))
    with pytest.raises(NoPixelData):
        frame_pixels(source=pydicom.dcmread(_testdata("rtplan.dcm")))


def test_bytes_that_are_not_dicom_never_raise_a_raw_exception():
    with pytest.raises((InvalidDicomFile, NoPixelData)):
        frame_render(source=io.BytesIO(b"not a dicom file" * 20))
    with pytest.raises(InvalidDicomFile):
        frame_render(source="/nonexistent/file.dcm")
