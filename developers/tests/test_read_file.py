"""``POST /api/dicom/read/file/``: attributes as strings, every frame rendered, nothing
stored, clear 4xx errors."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from conftest import corpus_rows
from developers.models import AuditEvent, MonthlyUsage
from developers.tests.helpers import read_file, sample_file
from dicom.models import Instance, Patient, Study

pytestmark = pytest.mark.django_db
INSTALLED_DECODERS = {"plain", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"}


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def files_under(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


def test_all_attributes_come_back_as_strings_with_bulk_data_summarised(key_client):
    response = read_file(key_client, sample_file("CT_small.dcm"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert all(isinstance(v, str) for k, v in body.items() if k != "Images")
    assert body["Modality"] == "CT"
    assert body["ImageType"] == "['ORIGINAL', 'PRIMARY', 'AXIAL']"
    assert body["Rows"] == "128"
    assert body["PixelData"] == "<bulk data: 32768 bytes>"
    assert body["OtherPatientIDsSequence"].startswith("[(0010,0020) Patient ID")
    assert body["ImageFormat"] == "PNG"
    assert len(body["Images"]) == 1
    assert list(body)[-2:] == ["ImageFormat", "Images"]
    assert not any(k.startswith("(") for k in body)  # private tags have no keyword


def test_only_the_requested_fields_come_back_in_the_requested_order(key_client):
    response = read_file(
        key_client,
        sample_file("CT_small.dcm"),
        fields=" Modality, PatientID,PixelData,TransferSyntaxUID,WindowCenter,Modality",
    )
    body = response.json()
    assert list(body) == [
        "Modality",
        "PatientID",
        "PixelData",
        "TransferSyntaxUID",
        "ImageFormat",
        "Images",
    ]  # WindowCenter is a valid keyword this file lacks: left out
    assert body["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"


def test_every_frame_of_a_multiframe_image_is_rendered(key_client):
    response = read_file(key_client, sample_file("rtdose.dcm"), return_format="gif")
    body = response.json()
    assert body["NumberOfFrames"] == "15"
    assert len(body["Images"]) == 15
    for encoded in body["Images"]:
        assert Image.open(io.BytesIO(base64.b64decode(encoded))).format == "GIF"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"fields": "PatientName,NotAKeyword"}, "unknown_field"),
        ({"return_format": "bmp"}, "bad_format"),
        ({"return_format": "webp"}, "bad_format"),
    ],
)
def test_bad_parameters_are_400_with_detail(key_client, fields, code):
    response = read_file(key_client, sample_file("CT_small.dcm"), **fields)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["error"]


def test_a_file_that_is_not_dicom_is_400(key_client):
    response = read_file(key_client, data=b"hello, I am a text file" * 20, name="notes.dcm")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_dicom"


def test_an_empty_file_and_a_missing_file_are_400(key_client):
    assert read_file(key_client, data=b"", name="empty.dcm").status_code == 400
    response = key_client.post("/api/dicom/read/file/", {"fields": "Modality"})
    assert response.status_code == 400
    assert response.json()["code"] == "no_file"


def test_a_zip_answers_one_object_per_dicom_member(key_client):
    archive = zip_of(
        {
            "a/CT_small.dcm": sample_file("CT_small.dcm").read_bytes(),
            "README.txt": b"not dicom",
            "b/MR_small": sample_file("MR_small.dcm").read_bytes(),
        }
    )
    response = read_file(key_client, data=archive, name="study.zip", fields="Modality")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(o["FileName"], o["Modality"], len(o["Images"])) for o in body] == [
        ("a/CT_small.dcm", "CT", 1),
        ("b/MR_small", "MR", 1),
    ]


def test_a_zip_without_dicom_members_or_with_unsafe_paths_is_400(key_client):
    empty = read_file(key_client, data=zip_of({"x.txt": b"text"}), name="x.zip")
    assert empty.status_code == 400
    unsafe = read_file(key_client, data=zip_of({"../evil.dcm": b"x"}), name="x.zip")
    assert unsafe.status_code == 400
    assert unsafe.json()["code"] == "unsafe_archive"


def test_nothing_is_stored_no_row_no_file_no_temp_file(
    key_client, settings, isolated_storage, tmp_path
):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # spool every upload to FILE_UPLOAD_TEMP_DIR
    folders = (
        Path(settings.LIGHTBOX_STAGING_DIR),
        Path(settings.MEDIA_ROOT),
        tmp_path / "uploads",
    )
    before = files_under(*folders)
    archive = zip_of({"CT_small.dcm": sample_file("CT_small.dcm").read_bytes()})

    assert read_file(key_client, sample_file("rtdose.dcm")).status_code == 200
    assert read_file(key_client, data=archive, name="one.zip").status_code == 200
    assert read_file(key_client, data=b"garbage" * 400, name="bad.dcm").status_code == 400

    assert files_under(*folders) == before == []
    assert (Instance.objects.count(), Study.objects.count(), Patient.objects.count()) == (0, 0, 0)
    assert MonthlyUsage.objects.get().count == 3
    assert AuditEvent.objects.filter(action="render", study_id__isnull=True).count() == 2


def test_an_image_with_undecodable_pixels_is_a_clear_error(key_client, corpus):
    response = read_file(key_client, corpus / "MR_truncated.dcm")
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


def decodable(row: dict[str, str]) -> bool:
    return bool(INSTALLED_DECODERS & set(row["decode_ok_with"].split(",")))


@pytest.mark.corpus
def test_every_decodable_corpus_sample_gives_one_image_per_frame_and_the_fields_asked(
    key_client, corpus, profile
):
    from developers.models import QuotaOverride

    QuotaOverride.objects.create(
        profile=profile, endpoint="/api/dicom/read/file/", monthly_limit=10_000
    )
    checked = 0
    for row in corpus_rows():
        if not decodable(row):
            continue
        response = read_file(
            key_client, corpus / row["file"], fields="SOPClassUID,Rows", return_format="jpeg"
        )
        assert response.status_code == 200, (row["file"], response.content[:300])
        body = response.json()
        assert set(body) <= {"SOPClassUID", "Rows", "ImageFormat", "Images"}, row["file"]
        assert body["Rows"] == row["rows_x_cols"].split("x")[0], row["file"]
        assert len(body["Images"]) == int(row["frames"]), row["file"]
        checked += 1
    assert checked >= 30


@pytest.mark.corpus
def test_corpus_samples_without_images_answer_metadata_or_a_clear_400(key_client, corpus, profile):
    for row in corpus_rows():
        if row["frames"] not in ("", "n/a") and row["pixel_element"] != "none":
            continue
        response = read_file(key_client, corpus / row["file"])
        assert response.status_code in (200, 400), (row["file"], response.content[:300])
        if response.status_code == 200:
            assert response.json()["Images"] == [], row["file"]


def hostile_payloads() -> dict[str, bytes]:
    from dicom.tests.factories import ct_variant
    from dicom.tests.test_hostile_uploads import _deeply_nested, _with_long_length_field, png_bytes

    ct = sample_file("CT_small.dcm").read_bytes()
    return {
        "png": png_bytes(),
        "html": b"<!doctype html><script>alert(1)</script>" * 10,
        "truncated": ct[:700],
        "long-length": _with_long_length_field(ct),
        "deep-nesting": _deeply_nested(5000),
        "impossible-size": ct_variant(Rows=60000, Columns=60000),
        "pixels-cut": ct[:-5000],
    }


def test_hostile_files_are_4xx_never_500_and_leave_nothing(key_client, profile, isolated_storage):
    from developers.models import QuotaOverride

    QuotaOverride.objects.create(
        profile=profile, endpoint="/api/dicom/read/file/", monthly_limit=100
    )
    for name, data in hostile_payloads().items():
        response = read_file(key_client, data=data, name=f"{name}.dcm")
        assert 400 <= response.status_code < 500, (name, response.content[:200])
        assert response.json()["error"], name
    assert files_under(isolated_storage / "staging") == []
