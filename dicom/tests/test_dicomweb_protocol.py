"""DICOMweb over Django's test client: STOW statuses, QIDO matching, WADO negotiation,
metadata caching, visibility. Real files from pydicom's test data; nothing mocked."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from pydicom.uid import generate_uid

from dicom.dicomweb.multipart import MultipartReader, media_type_parse, multipart_stream
from dicom.models import Instance, Study
from dicom.tests.factories import ct_small_path, ct_variant, mr_small_path

pytestmark = pytest.mark.django_db

DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def body_of(parts: list[bytes], boundary: str = "b0undary") -> bytes:
    return b"".join(
        multipart_stream(
            [({"Content-Type": "application/dicom"}, [p]) for p in parts], boundary=boundary
        )
    )


def stow(client, parts: list[bytes], *, study: str | None = None, quoted: bool = True):
    kind = '"application/dicom"' if quoted else "application/dicom"
    url = "/dicomweb/studies" + (f"/{study}" if study else "")
    return client.generic(
        "POST",
        url,
        body_of(parts),
        content_type=f"multipart/related; type={kind}; boundary=b0undary",
    )


def seq(response, tag: str) -> list[dict]:
    return json.loads(response.content).get(tag, {}).get("Value", [])


def multipart_parts(response) -> list[bytes]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    boundary = media_type_parse(response["Content-Type"]).params["boundary"]
    return [body.read() for _h, body in MultipartReader(io.BytesIO(content), boundary).parts()]


# --- multipart ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 70, 65536])
def test_multipart_reader_splits_parts_whatever_the_chunk_size(chunk):
    parts = [b"first\r\n--b0und", b"", b"x" * 1000]
    reader = MultipartReader(io.BytesIO(b"preamble\r\n" + body_of(parts)), "b0undary", chunk=chunk)
    assert [body.read() for _h, body in reader.parts()] == parts


def test_media_type_parameters_are_read_quoted_or_not():
    quoted = media_type_parse('multipart/related; type="application/dicom"; boundary="a b"')
    bare = media_type_parse("Multipart/Related;type=application/dicom;boundary=ab")
    assert quoted.params == {"type": "application/dicom", "boundary": "a b"}
    assert (bare.mime, bare.params["type"]) == ("multipart/related", "application/dicom")


# --- STOW-RS -------------------------------------------------------------------------------


def test_stow_stores_all_parts_and_answers_200(owner_client):
    response = stow(owner_client, [ct_small_path().read_bytes(), mr_small_path().read_bytes()])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    assert len(seq(response, "00081199")) == 2
    assert Instance.objects.count() == 2


def test_stow_accepts_an_unquoted_type_and_identical_resends(owner_client):
    data = ct_small_path().read_bytes()
    assert stow(owner_client, [data], quoted=False).status_code == 200
    again = stow(owner_client, [data])
    assert again.status_code == 200
    assert Instance.objects.count() == 1


def test_stow_with_one_bad_part_answers_202_with_failure_reason(owner_client):
    response = stow(owner_client, [ct_small_path().read_bytes(), b"not dicom at all" * 20])
    assert response.status_code == 202
    failed = seq(response, "00081198")
    assert failed[0]["00081197"]["Value"] == [0xC000]


def test_stow_of_another_study_than_the_path_is_refused_with_409(owner_client):
    response = stow(owner_client, [ct_variant()], study=generate_uid())
    assert response.status_code == 409
    failed = seq(response, "00081198")
    assert failed[0]["00081197"]["Value"] == [0xA900]
    assert failed[0]["00081155"]["Value"]
    assert not Instance.objects.exists()


def test_stow_of_a_different_file_under_a_stored_sop_uid_fails_with_0111(owner_client):
    sop = generate_uid()
    assert stow(owner_client, [ct_variant(sop_uid=sop)]).status_code == 200
    response = stow(owner_client, [ct_variant(sop_uid=sop)])
    assert response.status_code == 409
    assert seq(response, "00081198")[0]["00081197"]["Value"] == [0x0111]


def test_stow_with_another_media_type_is_415(owner_client):
    response = owner_client.generic(
        "POST", "/dicomweb/studies", b"{}", content_type="application/dicom+json"
    )
    assert response.status_code == 415


def test_unauthenticated_requests_get_401_json(client):
    response = client.get("/dicomweb/studies")
    assert response.status_code == 401
    assert response.json()["error"]


# --- QIDO-RS -------------------------------------------------------------------------------


@pytest.fixture
def stored(owner_client):
    study = generate_uid()
    series = generate_uid()
    parts = [
        ct_variant(
            study_uid=study,
            series_uid=series,
            instance_number=i,
            PatientName="SMITH^ANNA",
            PatientID="PID-1",
            StudyDate="20180305",
            AccessionNumber="ACC7",
        )
        for i in (1, 2)
    ]
    parts.append(mr_small_path().read_bytes())
    assert stow(owner_client, parts).status_code == 200
    return {"study": study, "series": series}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("PatientID=PID-1", 1),
        ("00100020=PID-1", 1),
        ("PatientName=smi*", 1),
        ("PatientName=*ANN%3F", 1),
        ("StudyDate=20180101-20180630", 1),
        ("StudyDate=-20000101", 0),
        ("AccessionNumber=ACC7", 1),
        ("ModalitiesInStudy=CT", 1),
        ("ModalitiesInStudy=MR", 1),
        ("StudyInstanceUID={study}\\1.2.3", 1),
        ("StudyInstanceUID={study},1.2.3", 1),
        ("", 2),
    ],
)
def test_study_search_matches_each_parameter(owner_client, stored, query, expected):
    response = owner_client.get("/dicomweb/studies?" + query.format(**stored))
    if expected == 0:
        assert response.status_code == 204
        return
    assert response.status_code == 200
    assert len(response.json()) == expected


def test_study_search_returns_the_required_attributes_and_counts(owner_client, stored):
    (study,) = owner_client.get(f"/dicomweb/studies?StudyInstanceUID={stored['study']}").json()
    for tag in (
        "00080020",
        "00080030",
        "00080050",
        "00080061",
        "00080090",
        "00100010",
        "00100020",
        "00100030",
        "00100040",
        "0020000D",
        "00200010",
        "00081190",
    ):
        assert tag in study
    assert study["00201206"]["Value"] == [1]
    assert study["00201208"]["Value"] == [2]
    assert study["00100010"]["Value"] == [{"Alphabetic": "SMITH^ANNA"}]


def test_limit_offset_and_the_warning_about_remaining_results(owner_client, stored):
    first = owner_client.get("/dicomweb/studies?limit=1")
    second = owner_client.get("/dicomweb/studies?limit=1&offset=1")
    assert "1 additional results" in first["Warning"]
    assert "Warning" not in second
    assert first.json()[0]["0020000D"] != second.json()[0]["0020000D"]


def test_fuzzymatching_is_answered_with_a_warning(owner_client, stored):
    response = owner_client.get("/dicomweb/studies?fuzzymatching=true&PatientName=SMITH*")
    assert "fuzzymatching parameter is not supported" in response["Warning"]


def test_includefield_takes_unindexed_attributes_from_the_header(owner_client, stored):
    url = f"/dicomweb/studies/{stored['study']}/series?includefield=00180050,Manufacturer"
    (series,) = owner_client.get(url).json()
    assert series["00180050"]["vr"] == "DS" and "Value" in series["00180050"]
    assert series["00201209"]["Value"] == [2]
    everything = owner_client.get("/dicomweb/studies?includefield=all&PatientID=PID-1").json()
    assert "00180050" in everything[0]


def test_series_and_instance_searches_at_every_level(owner_client, stored):
    s, se = stored["study"], stored["series"]
    assert len(owner_client.get("/dicomweb/series?Modality=CT").json()) == 1
    assert len(owner_client.get(f"/dicomweb/studies/{s}/instances").json()) == 2
    instances = owner_client.get(f"/dicomweb/studies/{s}/series/{se}/instances?InstanceNumber=2")
    (instance,) = instances.json()
    for tag in ("00080016", "00080018", "00200013", "00280010", "00280011", "00280100", "00081190"):
        assert tag in instance
    assert owner_client.get("/dicomweb/instances?SOPClassUID=1.2.840.10008.5.1.4.1.1.4").json()


def test_an_invalid_date_is_a_400(owner_client, stored):
    assert owner_client.get("/dicomweb/studies?StudyDate=2018").status_code == 400


def test_others_see_nothing(outsider_client, stored):
    assert outsider_client.get("/dicomweb/studies").status_code == 204
    url = f"/dicomweb/studies/{stored['study']}/metadata"
    assert outsider_client.get(url).status_code == 404


# --- WADO-RS -------------------------------------------------------------------------------


def test_retrieve_streams_the_stored_files_byte_identical(owner_client, stored):
    response = owner_client.get(f"/dicomweb/studies/{stored['study']}", HTTP_ACCEPT=DICOM_ACCEPT)
    assert response.status_code == 200 and response.streaming
    stored_bytes = sorted(
        _read(i) for i in Instance.objects.filter(series__study__study_instance_uid=stored["study"])
    )
    assert sorted(multipart_parts(response)) == stored_bytes


def _read(instance: Instance) -> bytes:
    from dicom.storage import blob_open

    with blob_open(instance.file_path) as fh:
        return fh.read()


def test_retrieve_in_an_unsupported_syntax_or_media_type_is_406(owner_client, stored):
    url = f"/dicomweb/studies/{stored['study']}"
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert owner_client.get(url, HTTP_ACCEPT=jpeg).status_code == 406
    assert owner_client.get(url, HTTP_ACCEPT="text/html").status_code == 406


def test_metadata_has_bulk_uris_an_etag_and_is_invalidated_by_a_new_instance(owner_client, stored):
    url = f"/dicomweb/studies/{stored['study']}/series/{stored['series']}/metadata"
    first = owner_client.get(url, HTTP_ACCEPT="application/dicom+json")
    data = first.json()
    assert len(data) == 2
    assert data[0]["7FE00010"]["BulkDataURI"].startswith("http://testserver/dicomweb/studies/")
    assert owner_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    stow(owner_client, [ct_variant(study_uid=stored["study"], series_uid=stored["series"])])
    third = owner_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert third.status_code == 200 and len(third.json()) == 3


def test_bulkdata_uri_returns_the_pixel_data(owner_client, stored):
    url = f"/dicomweb/studies/{stored['study']}/series/{stored['series']}/metadata"
    uri = owner_client.get(url).json()[0]["7FE00010"]["BulkDataURI"]
    response = owner_client.get(uri.replace("http://testserver", ""))
    (value,) = multipart_parts(response)
    assert value == pydicom.dcmread(ct_small_path()).PixelData


def test_frames_are_uncompressed_octets(owner_client, stored):
    instance = Instance.objects.filter(series__series_instance_uid=stored["series"]).first()
    url = (
        f"/dicomweb/studies/{stored['study']}/series/{stored['series']}/instances/"
        f"{instance.sop_instance_uid}/frames/1"
    )
    ohif = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    (frame,) = multipart_parts(owner_client.get(url, HTTP_ACCEPT=ohif))
    assert frame == pydicom.dcmread(ct_small_path()).PixelData
    assert owner_client.get(url[:-1] + "2").status_code == 404


def test_rendered_and_thumbnail_at_each_level(owner_client, stored):
    instance = Instance.objects.filter(series__series_instance_uid=stored["series"]).first()
    base = f"/dicomweb/studies/{stored['study']}"
    inst = f"{base}/series/{stored['series']}/instances/{instance.sop_instance_uid}"
    for url in (
        f"{base}/rendered",
        f"{base}/series/{stored['series']}/thumbnail",
        f"{inst}/rendered?window=40,400&viewport=64,64&quality=50",
        f"{inst}/frames/1/rendered",
    ):
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "image/jpeg"
    png = owner_client.get(f"{inst}/rendered", HTTP_ACCEPT="image/png")
    assert png.content.startswith(b"\x89PNG")
    assert owner_client.get(f"{inst}/rendered", HTTP_ACCEPT="video/mp4").status_code == 406


def test_a_study_or_series_renders_the_middle_image_of_its_first_series(owner_client):
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    # Each image has its own window, so each renders differently.
    images = [(first, 1, n, center) for n, center in ((1, -300), (2, 40), (3, 300))]
    images += [(second, 2, n, center) for n, center in ((1, -100), (2, 100), (3, 500))]
    parts = [
        ct_variant(
            study_uid=study,
            series_uid=series,
            SeriesNumber=number,
            instance_number=n,
            WindowCenter=center,
            WindowWidth=400,
        )
        for series, number, n, center in reversed(images)  # stored in another order
    ]
    assert stow(owner_client, parts).status_code == 200

    def rendered(url):
        response = owner_client.get(f"/dicomweb/studies/{study}{url}/rendered")
        assert response.status_code == 200, url
        return response.content

    def instance_url(series, n):
        sop = Instance.objects.get(series__series_instance_uid=series, instance_number=n)
        return f"/series/{series}/instances/{sop.sop_instance_uid}"

    middle_of_first = rendered(instance_url(first, 2))
    assert rendered("") == middle_of_first
    assert rendered(f"/series/{first}") == middle_of_first
    assert rendered(f"/series/{second}") == rendered(instance_url(second, 2))
    assert middle_of_first != rendered(instance_url(first, 1))


def test_a_study_stored_by_stow_is_in_the_viewer_api(owner_client, stored):
    study = Study.objects.get(study_instance_uid=stored["study"])
    response = owner_client.get("/viewer/api/studies/")
    assert response.status_code == 200
    assert str(study.study_instance_uid) in response.content.decode()


def test_retrieve_streams_under_asgi_as_well(stored, owner, async_client):
    from asgiref.sync import async_to_sync

    async_client.force_login(owner)

    async def fetch():
        response = await async_client.get(
            f"/dicomweb/studies/{stored['study']}", headers={"accept": DICOM_ACCEPT}
        )
        assert response.status_code == 200 and response.is_async
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, content = async_to_sync(fetch)()
    boundary = media_type_parse(response["Content-Type"]).params["boundary"]
    parts = [b.read() for _h, b in MultipartReader(io.BytesIO(content), boundary).parts()]
    assert len(parts) == 2 and all(p[128:132] == b"DICM" for p in parts)
