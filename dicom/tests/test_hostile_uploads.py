"""Hostile uploads: each gets a 4xx JSON answer and leaves database and storage as before."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dicom.models import Instance, Patient, Series, Study
from dicom.tests.factories import ct_small_path, ct_variant, dataset_bytes

pytestmark = pytest.mark.django_db
UPLOAD_URL = "/viewer/api/upload/"


def archive_state(root: Path) -> tuple:
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    rows = (
        Patient.objects.count(),
        Study.objects.count(),
        Series.objects.count(),
        Instance.objects.count(),
    )
    return rows, files


BODY_STYLE = "multipart"


@pytest.fixture(autouse=True, params=["multipart", "raw"])
def body_style(request, monkeypatch) -> str:
    """Every hostile file is sent both ways: as a multipart part and as the raw body."""
    monkeypatch.setitem(globals(), "BODY_STYLE", request.param)
    return request.param


def post_file(client, name: str, data: bytes):
    if BODY_STYLE == "raw":
        return client.generic(
            "POST", UPLOAD_URL, data, content_type="application/dicom", HTTP_X_FILE_NAME=name
        )
    return client.post(UPLOAD_URL, {"files": SimpleUploadedFile(name, data)}, format="multipart")


def assert_refused(client, root: Path, name: str, data: bytes, status: int = 400) -> dict:
    before = archive_state(root)
    response = post_file(client, name, data)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["error"]
    assert archive_state(root) == before
    return body


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_empty_file_is_refused(owner_client, isolated_storage, body_style):
    if body_style == "raw":  # an empty body holds no file at all
        before = archive_state(isolated_storage)
        response = post_file(owner_client, "empty.dcm", b"")
        assert response.status_code == 400
        assert response.json()["code"] == "no_files"
        assert archive_state(isolated_storage) == before
        return
    body = assert_refused(owner_client, isolated_storage, "empty.dcm", b"")
    assert body["errors"][0]["code"] == "invalid_dicom"


def test_a_png_named_dcm_is_refused(owner_client, isolated_storage):
    assert_refused(owner_client, isolated_storage, "scan.dcm", png_bytes())


def test_an_html_file_named_dcm_is_refused(owner_client, isolated_storage):
    html = b"<!doctype html><html><body><script>alert(1)</script></body></html>" * 10
    assert_refused(owner_client, isolated_storage, "page.dcm", html)


def test_a_truncated_dataset_is_refused(owner_client, isolated_storage):
    data = ct_small_path().read_bytes()[:700]
    assert_refused(owner_client, isolated_storage, "cut.dcm", data)


def test_a_dataset_cut_inside_an_element_header_is_refused(owner_client, isolated_storage):
    data = ct_small_path().read_bytes()
    at = data.index(struct.pack("<HH", 0x0020, 0x0011) + b"IS")  # after the three UIDs
    body = assert_refused(owner_client, isolated_storage, "cut.dcm", data[: at + 3])
    assert "truncated" in body["errors"][0]["error"]


def _with_long_length_field(data: bytes) -> bytes:
    """Rewrite (0008,0020) StudyDate's 2-byte explicit-VR length... by making it a UN
    element whose 4-byte length claims nearly 4 GB."""
    marker = struct.pack("<HH", 0x0008, 0x0020) + b"DA"
    at = data.index(marker)
    length = struct.unpack("<H", data[at + 6 : at + 8])[0]
    forged = struct.pack("<HH", 0x0008, 0x0020) + b"UN\x00\x00" + struct.pack("<I", 0xFFFFFFF0)
    return data[:at] + forged + data[at + 8 + length :]


def test_a_length_field_claiming_gigabytes_is_refused(owner_client, isolated_storage):
    data = _with_long_length_field(ct_small_path().read_bytes())
    assert_refused(owner_client, isolated_storage, "long.dcm", data)


def _deeply_nested(depth: int) -> bytes:
    """An implicit-VR dataset whose (0040,A730) Content Sequence nests ``depth`` deep."""

    def element(group: int, elem: int, value: bytes) -> bytes:
        return struct.pack("<HHI", group, elem, len(value)) + value

    uid = b"1.2.3.4\x00"
    body = (
        element(0x0008, 0x0016, b"1.2.840.10008.5.1.4.1.1.7\x00")
        + element(0x0008, 0x0018, uid)
        + element(0x0008, 0x0060, b"OT")
        + element(0x0020, 0x000D, b"1.2.3.5\x00")
        + element(0x0020, 0x000E, b"1.2.3.6\x00")
    )
    open_sq = struct.pack("<HHI", 0x0040, 0xA730, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    close_sq = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = open_sq * depth + close_sq * depth
    return body + nested


def test_sequences_nested_thousands_deep_are_refused(owner_client, isolated_storage):
    assert_refused(owner_client, isolated_storage, "deep.dcm", _deeply_nested(5000))


def test_declared_image_size_beyond_the_bytes_present_is_refused(owner_client, isolated_storage):
    data = ct_variant(Rows=60000, Columns=60000)
    body = assert_refused(owner_client, isolated_storage, "huge.dcm", data)
    assert "pixel data" in body["errors"][0]["error"]


def test_an_image_with_empty_rows_is_stored_and_its_render_says_why(owner_client):
    response = post_file(owner_client, "no-rows.dcm", ct_variant(Rows=None))
    assert response.status_code == 201, response.content[:300]
    image_id = response.json()["uploaded_files"][0]["image_id"]
    preview = owner_client.get(f"/viewer/api/images/{image_id}/preview/")
    assert preview.status_code in (415, 422)
    assert preview.json()["error"]


def test_a_file_over_the_size_limit_is_refused(owner_client, isolated_storage, settings):
    settings.LIGHTBOX_MAX_FILE_BYTES = 10_000
    assert_refused(owner_client, isolated_storage, "big.dcm", ct_variant(), status=413)


def _zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "bad_name", ["../evil.dcm", "a/../../evil.dcm", "/abs/evil.dcm", "C:/evil.dcm"]
)
def test_a_zip_with_an_unsafe_member_path_is_refused_whole(
    owner_client, isolated_storage, bad_name
):
    data = _zip({"good.dcm": ct_variant(), bad_name: ct_variant()})
    body = assert_refused(owner_client, isolated_storage, "study.zip", data)
    assert body["errors"][0]["code"] == "unsafe_archive"


def test_a_zip_with_a_symlink_member_is_refused_whole(owner_client, isolated_storage):
    data = _zip({"good.dcm": ct_variant()}, symlink="link.dcm")
    assert_refused(owner_client, isolated_storage, "study.zip", data)


def test_a_zip_bomb_is_stopped_by_the_bytes_really_inflated(
    owner_client, isolated_storage, settings
):
    settings.LIGHTBOX_MAX_ZIP_TOTAL_BYTES = 20 * 1024 * 1024
    settings.LIGHTBOX_MAX_FILE_BYTES = 100 * 1024 * 1024
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("good.dcm", ct_variant())
        for i in range(3):
            with archive.open(f"zeros{i}.dcm", "w", force_zip64=True) as member:
                for _ in range(40):
                    member.write(bytes(1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024  # 120 MB of zeros in well under 1 MB
    tracemalloc.start()
    body = assert_refused(owner_client, isolated_storage, "bomb.zip", data)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert body["errors"][0]["code"] == "unsafe_archive"
    assert peak < 30 * 1024 * 1024


def test_a_zip_with_too_many_members_is_refused(owner_client, isolated_storage, settings):
    settings.LIGHTBOX_MAX_ZIP_MEMBERS = 5
    data = _zip({f"f{i}.txt": b"x" for i in range(6)})
    assert_refused(owner_client, isolated_storage, "many.zip", data)


def test_a_corrupt_zip_is_refused(owner_client, isolated_storage):
    data = _zip({"good.dcm": ct_variant()})
    assert_refused(owner_client, isolated_storage, "broken.zip", data[:200] + b"\x00" * 50)


def test_script_and_sql_in_patient_name_are_stored_verbatim(owner_client, owner):
    name = "<script>alert('x')</script>^Robert'); DROP TABLE dicom_study;--"
    ds = pydicom.dcmread(ct_small_path())
    ds.PatientName = name
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    response = post_file(owner_client, "x.dcm", dataset_bytes(ds))
    assert response.status_code == 201
    listing = owner_client.get("/viewer/api/studies/", {"patient_name": "*DROP TABLE*"}).json()
    assert [s["patient_name"] for s in listing] == [name]
    image_id = response.json()["uploaded_files"][0]["image_id"]
    header = owner_client.get(f"/viewer/api/images/{image_id}/header/", {"tag": "PatientName"})
    assert header.json()["value"] == name
    assert Study.objects.count() == 1


def test_the_admin_escapes_a_script_in_patient_name(client, owner_client, staff):
    ds = pydicom.dcmread(ct_small_path())
    ds.PatientName = "<script>alert(1)</script>"
    post_file(owner_client, "x.dcm", dataset_bytes(ds))
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    instance = Instance.objects.get()
    page = client.get(f"/admin/dicom/instance/{instance.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
