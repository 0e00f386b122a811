from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pydicom
import pytest
from PIL import Image

from dicom.conversion import (
    SECONDARY_CAPTURE,
    ConversionInfo,
    InvalidImageFile,
    image_convert,
    uids_for,
)
from dicom.ingest import UID_RE
from dicom.storage import staging_write
from dicom.tests.factories import ct_small_path
from jobs.tests.helpers import jpeg_bytes, png_bytes

pytestmark = pytest.mark.django_db


def convert(data: bytes, info: ConversionInfo | None = None) -> tuple[pydicom.Dataset, bytes]:
    staged = staging_write(io.BytesIO(data), filename="picture")
    out = image_convert(staged=staged, info=info or ConversionInfo())
    raw = out.path.read_bytes()
    out.discard()
    return pydicom.dcmread(io.BytesIO(raw)), raw


def test_a_jpeg_becomes_an_rgb_secondary_capture_with_fresh_uids():
    ds, _ = convert(jpeg_bytes(width=64, height=48))
    assert ds.SOPClassUID == SECONDARY_CAPTURE == ds.file_meta.MediaStorageSOPClassUID
    assert ds.ConversionType == "WSD" and ds.Modality == "OT"
    assert (ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.Rows, ds.Columns) == (
        "RGB",
        3,
        48,
        64,
    )
    assert ds.LossyImageCompression == "01"
    uids = [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    assert len(set(uids)) == 3 and all(UID_RE.match(u) and len(u) <= 64 for u in uids)
    assert str(ds.PatientName) == "" and ds.PatientID == ""
    assert ds.pixel_array.shape == (48, 64, 3)


def test_a_greyscale_png_keeps_its_pixels_exactly_as_monochrome2():
    data = png_bytes(mode="L")
    ds, _ = convert(data, ConversionInfo(patient_name="Doe^John", patient_id="X1"))
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsAllocated == 8
    assert np.array_equal(ds.pixel_array, np.asarray(Image.open(io.BytesIO(data))))
    assert (str(ds.PatientName), ds.PatientID) == ("Doe^John", "X1")


def test_a_16_bit_png_stays_16_bit():
    data = png_bytes(mode="I;16")
    ds, _ = convert(data)
    assert ds.BitsAllocated == 16 and ds.BitsStored == 16
    assert np.array_equal(ds.pixel_array, np.asarray(Image.open(io.BytesIO(data))))


def test_the_same_picture_with_the_same_uids_and_time_converts_to_the_same_bytes():
    study, series, sop = uids_for(seed="job-1", instance=3)
    info = ConversionInfo(
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        when=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    assert convert(jpeg_bytes(), info)[1] == convert(jpeg_bytes(), info)[1]
    assert uids_for(seed="job-1", instance=4)[2] != sop


def test_a_file_that_is_no_picture_is_refused():
    with pytest.raises(InvalidImageFile):
        convert(ct_small_path().read_bytes())
    with pytest.raises(InvalidImageFile, match="could not be decoded"):
        convert(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)


def test_the_single_upload_converts_a_picture_and_stores_a_dicom_as_is(owner_client, owner):
    picture = owner_client.generic(
        "POST",
        "/upload",
        jpeg_bytes(),
        content_type="image/jpeg",
        HTTP_X_FILE_NAME="photo.jpg",
        HTTP_X_PATIENT_ID="P-9",
    )
    dicom = owner_client.generic(
        "POST",
        "/upload",
        ct_small_path().read_bytes(),
        content_type="application/dicom",
        HTTP_X_FILE_NAME="ct.dcm",
    )
    again = owner_client.generic(
        "POST",
        "/upload",
        ct_small_path().read_bytes(),
        content_type="application/dicom",
        HTTP_X_FILE_NAME="ct.dcm",
    )
    nameless = owner_client.generic("POST", "/upload", jpeg_bytes(), content_type="image/jpeg")
    assert picture.status_code == 201 and picture.json()["converted"] is True
    assert "diagnosis" not in picture.json()
    assert dicom.status_code == 201 and dicom.json()["converted"] is False
    assert again.status_code == 200 and again.json()["upload_id"] == dicom.json()["upload_id"]
    assert nameless.status_code == 400 and nameless.json()["code"] == "missing_filename"
    details = owner_client.get(f"/upload/{picture.json()['upload_id']}/details").json()
    assert details["sop_class_uid"] == SECONDARY_CAPTURE and details["filename"] == "photo.dcm"
    uploads = owner_client.get(f"/user/{owner.pk}/uploads").json()
    assert uploads["count"] == 2
    stats = owner_client.get("/stats").json()
    assert stats["total_uploads"] == 2 and stats["unique_users"] == 1
    assert stats["latest_upload"] >= stats["earliest_upload"]


def test_uploads_and_stats_are_scoped_to_what_the_caller_may_see(
    owner_client, outsider_client, owner
):
    response = owner_client.generic(
        "POST",
        "/upload",
        ct_small_path().read_bytes(),
        content_type="application/dicom",
        HTTP_X_FILE_NAME="ct.dcm",
    )
    upload_id = response.json()["upload_id"]
    assert outsider_client.get(f"/upload/{upload_id}/details").status_code == 404
    assert outsider_client.get(f"/user/{owner.pk}/uploads").status_code == 404
    assert outsider_client.get("/stats").json()["total_uploads"] == 0
