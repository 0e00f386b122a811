"""DICOMweb against a live server with the real ``dicomweb-client`` library: every corpus
sample is stored by STOW-RS, found by QIDO-RS, retrieved byte-identical by WADO-RS, and
its metadata, frames and rendered images are read."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from rest_framework_simplejwt.tokens import AccessToken

from conftest import corpus_rows
from dicom.dicomweb.multipart import MultipartReader, media_type_parse
from dicom.models import Instance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.corpus]

# Files the ingest pipeline refuses on purpose (see the corpus README).
REFUSED = {"DICOMDIR", "MR_truncated.dcm"}


@pytest.fixture
def web(live_server, owner) -> DICOMwebClient:
    token = AccessToken.for_user(owner)
    # Django's WSGI test server needs a Content-Length: no chunked request bodies.
    return DICOMwebClient(
        url=f"{live_server.url}/dicomweb",
        chunk_size=10**9,
        headers={"Authorization": f"Bearer {token}"},
    )


def _samples(corpus: Path) -> list[tuple[str, pydicom.Dataset]]:
    samples = []
    for row in corpus_rows():
        try:
            ds = pydicom.dcmread(corpus / row["file"], force=True)
        except Exception:  # unreadable samples are ingest's business
            continue
        if row["file"] in REFUSED or "SOPInstanceUID" not in ds:
            continue
        if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
            continue  # dicomweb-client can't encode a dataset without a transfer syntax
        samples.append((row["file"], ds))
    return samples


def _encoded(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds)  # exactly what dicomweb-client sends
    return buffer.getvalue()


@pytest.fixture
def stored(web, corpus):
    samples = _samples(corpus)
    accepted = []
    for name, ds in samples:
        try:
            web.store_instances([ds])
        except requests.HTTPError as exc:  # 409: none stored, with the reason
            assert exc.response.status_code == 409, (name, exc.response.content[:300])
            # Corpus files that reuse another sample's SOP Instance UID, or lack a UID.
            reason = exc.response.json()["00081198"]["Value"][0]["00081197"]["Value"][0]
            print(f"refused {name}: {reason:#06x}")
            continue
        accepted.append((name, ds))
    return accepted


def test_dicomweb_client_stores_finds_and_retrieves_every_sample(web, stored, live_server, owner):
    assert len(stored) >= 35, "most corpus samples must be accepted by STOW-RS"
    for name, ds in stored:
        study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        found = web.search_for_instances(study, series, search_filters={"SOPInstanceUID": sop})
        assert len(found) == 1, name
        raw = _raw_retrieve(
            web, f"{live_server.url}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
        )
        assert raw == _encoded(ds), f"{name} is not byte-identical"
        meta = web.retrieve_instance_metadata(study, series, sop)
        assert meta["00080018"]["Value"] == [sop]


def _raw_retrieve(web: DICOMwebClient, url: str) -> bytes:
    response = web._session.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    )
    assert response.status_code == 200
    boundary = media_type_parse(response.headers["Content-Type"]).params["boundary"]
    (part,) = [
        b.read() for _h, b in MultipartReader(io.BytesIO(response.content), boundary).parts()
    ]
    return part


def test_qido_by_each_parameter_with_dicomweb_client(web, stored):
    ds = dict(stored)["CT_small.dcm"]
    study_uid = ds.StudyInstanceUID
    filters = [
        {"PatientID": ds.PatientID},
        {"00100020": ds.PatientID},
        {"PatientName": str(ds.PatientName)[:3].lower() + "*"},
        {"StudyDate": f"{ds.StudyDate}-{ds.StudyDate}"},
        {"StudyInstanceUID": f"{study_uid}\\1.2.3"},
        {"ModalitiesInStudy": "CT"},
    ]
    for search_filters in filters:
        studies = web.search_for_studies(search_filters=search_filters, get_remaining=True)
        assert study_uid in [s["0020000D"]["Value"][0] for s in studies], search_filters
    series = web.search_for_series(
        study_uid, search_filters={"Modality": "CT"}, fields=["SeriesDescription"]
    )
    assert series[0]["0020000E"]["Value"] == [ds.SeriesInstanceUID]
    page = web.search_for_studies(limit=2, offset=0)
    assert len(page) == 2
    everything = web.search_for_studies(get_remaining=True)
    studies = {d.StudyInstanceUID for _n, d in stored}
    assert len(everything) == len(studies)


def test_retrieve_decoded_frames_metadata_and_rendered_with_dicomweb_client(web, stored):
    by_name = dict(stored)
    ct = by_name["CT_small.dcm"]
    frames = web.retrieve_instance_frames(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, frame_numbers=[1]
    )
    assert frames[0] == ct.PixelData
    jpeg_ls = by_name["CT1_JLSN.dcm"]
    compressed = web.retrieve_instance_frames(
        jpeg_ls.StudyInstanceUID,
        jpeg_ls.SeriesInstanceUID,
        jpeg_ls.SOPInstanceUID,
        frame_numbers=[1],
        media_types=(("image/jls", "1.2.840.10008.1.2.4.81"),),
    )
    assert compressed[0][:2] == b"\xff\xd8"
    multi = by_name["NM-MONO2-16-13x-heart"]
    frames = web.retrieve_instance_frames(
        multi.StudyInstanceUID, multi.SeriesInstanceUID, multi.SOPInstanceUID, frame_numbers=[2, 13]
    )
    assert len(frames) == 2 and len(frames[0]) == multi.Rows * multi.Columns * 2
    metadata = web.retrieve_series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert metadata[0]["7FE00010"]["BulkDataURI"]
    image = web.retrieve_instance_rendered(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, media_types=("image/png",)
    )
    assert image.startswith(b"\x89PNG")
    series_image = web.retrieve_series_rendered(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert series_image.startswith(b"\xff\xd8")
    decoded = web.retrieve_instance(
        jpeg_ls.StudyInstanceUID,
        jpeg_ls.SeriesInstanceUID,
        jpeg_ls.SOPInstanceUID,
        media_types=(("application/dicom", "1.2.840.10008.1.2.1"),),
    )
    assert decoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert Instance.objects.count() == len(stored)
