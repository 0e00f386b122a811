"""Data safety and operations: deletion, storage verification, health, deploy checks."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from dicom import storage
from dicom.ingest import instance_ingest
from dicom.models import Instance, Patient, Series, Study
from dicom.storage import local_move, staging_cleanup, staging_dir
from dicom.tests.factories import ct_variant

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def upload(client, *payloads: bytes) -> list[dict]:
    files = [SimpleUploadedFile(f"{i}.dcm", p) for i, p in enumerate(payloads)]
    response = client.post("/viewer/api/upload/", {"files": files}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["uploaded_files"]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_deleting_a_study_removes_rows_files_and_is_audited(
    owner_client, isolated_storage, django_capture_on_commit_callbacks
):
    from developers.models import AuditEvent

    study = pydicom.uid.generate_uid()
    uploaded = upload(owner_client, ct_variant(study_uid=study), ct_variant(study_uid=study))
    owner_client.get(f"/viewer/api/images/{uploaded[0]['image_id']}/preview/")  # derived file
    assert files_under(isolated_storage / "media")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.delete(f"/viewer/api/studies/{uploaded[0]['study_id']}/")
    assert response.status_code == 204
    assert (
        Study.objects.count(),
        Series.objects.count(),
        Instance.objects.count(),
        Patient.objects.count(),
    ) == (0, 0, 0, 0)
    assert files_under(isolated_storage / "media") == []
    event = AuditEvent.objects.get(action="delete")
    assert event.study_uid == study


def test_only_the_owner_or_staff_may_delete(owner_client, colleague, outsider_client):
    from rest_framework.test import APIClient

    uploaded = upload(owner_client, ct_variant())[0]
    Study.objects.get().shared_with.add(colleague.groups.get())
    colleague_client = APIClient()
    colleague_client.force_authenticate(colleague)
    url = f"/viewer/api/studies/{uploaded['study_id']}/"
    assert outsider_client.delete(url).status_code == 404
    assert colleague_client.delete(url).status_code == 403
    assert Study.objects.count() == 1


def test_deleting_the_last_image_removes_its_series_and_study(
    owner_client, isolated_storage, django_capture_on_commit_callbacks
):
    study = pydicom.uid.generate_uid()
    first, second = upload(
        owner_client,
        ct_variant(study_uid=study, Modality="CT"),
        ct_variant(study_uid=study, Modality="MR"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.delete(f"/viewer/api/images/{first['image_id']}/")
    assert response.status_code == 204
    assert Study.objects.get().modalities_in_study == "MR"
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.delete(f"/viewer/api/images/{second['image_id']}/")
    assert response.status_code == 204
    assert Study.objects.count() == 0
    assert files_under(isolated_storage / "media") == []


def test_deleting_an_instance_removes_its_file_after_commit(
    owner_client, owner, django_capture_on_commit_callbacks
):
    from dicom.deletion import instance_delete

    upload(owner_client, ct_variant())
    instance = Instance.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        instance_delete(instance=instance, by=owner)
    assert default_storage.exists(instance.file_path)  # not before the commit
    for callback in callbacks:
        callback()
    assert not default_storage.exists(instance.file_path)


def test_verify_storage_reports_missing_corrupt_and_orphan_files(owner_client, isolated_storage):
    upload(owner_client, ct_variant(), ct_variant(), ct_variant())
    good, damaged, lost = Instance.objects.order_by("id")
    media = isolated_storage / "media"
    (media / damaged.file_path).write_bytes(b"tampered")
    (media / lost.file_path).unlink()
    orphan = media / "final" / ("f" * 64)
    orphan.mkdir(parents=True)
    (orphan / "original.dcm").write_bytes(b"left over")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_storage", stdout=out)
    report = out.getvalue()
    assert exit_info.value.code == 1
    assert f"missing {lost.file_path}" in report
    assert f"corrupt {damaged.file_path}" in report
    assert f"orphan final/{'f' * 64}/" in report
    assert good.file_path not in report
    with pytest.raises(SystemExit):
        call_command("verify_storage", "--fix-orphans", stdout=io.StringIO())
    assert not orphan.exists()


def test_verify_storage_passes_on_a_healthy_archive(owner_client):
    upload(owner_client, ct_variant())
    out = io.StringIO()
    call_command("verify_storage", stdout=out)
    assert "0 missing, 0 corrupt, 0 orphan(s)" in out.getvalue()


def test_staging_leftovers_of_a_crash_are_cleaned_but_fresh_ones_kept():
    old, fresh = staging_dir() / "up-old.part", staging_dir() / "up-new.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    assert staging_cleanup(older_than_seconds=3600) == 1
    assert not old.exists() and fresh.exists()


def test_a_stored_original_gets_the_storage_permissions_not_the_staging_ones(owner_client):
    upload(owner_client, ct_variant())
    stored = Path(default_storage.path(Instance.objects.get().file_path))
    assert stored.stat().st_mode & 0o777 == default_storage.file_permissions_mode  # not 0600


def test_a_move_to_another_file_system_copies_whole_and_removes_the_staged_file(
    tmp_path, monkeypatch
):
    source, target = tmp_path / "up-1.part", tmp_path / "final" / "abc" / "original.dcm"
    source.write_bytes(b"DICM" * 1000)
    source.chmod(0o600)
    real_replace, calls = os.replace, []

    def replace(src, dst):  # the rename across file systems fails (EXDEV), the rest works
        calls.append(Path(src))
        if Path(src) == source:
            raise OSError(18, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    local_move(source, target)
    assert target.read_bytes() == b"DICM" * 1000 and not source.exists()
    assert target.stat().st_mode & 0o777 == default_storage.file_permissions_mode
    assert [p.name for p in target.parent.iterdir()] == ["original.dcm"]  # no temporary left
    assert len(calls) == 2  # the failed rename, then the copy's rename into place


@pytest.fixture
def synced(monkeypatch) -> list[Path]:
    """The paths ``os.fsync`` is asked to flush (a power cut is not something a test can
    cause; what it can see is that the bytes were asked to reach the disk)."""
    paths: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd):
        paths.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return paths


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="file descriptors named by /proc")
def test_a_stored_original_and_its_folder_entries_are_flushed_to_disk(
    owner_client, isolated_storage, synced
):
    upload(owner_client, ct_variant())
    stored = Path(default_storage.path(Instance.objects.get().file_path))
    staged = [p for p in synced if p.parent == staging_dir().resolve()]
    assert len(staged) == 1 and not staged[0].exists()  # the staged bytes, before the rename
    assert synced[-2:] == [stored.parent, stored.parent.parent]  # original.dcm, then {sha256}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="file descriptors named by /proc")
def test_a_second_file_in_a_stored_folder_flushes_only_that_folder(tmp_path, synced):
    (tmp_path / "final" / "abc").mkdir(parents=True)
    source = tmp_path / "up-1.part"
    source.write_bytes(b"DICM")
    local_move(source, tmp_path / "final" / "abc" / "original.dcm")
    assert synced == [source, tmp_path / "final" / "abc"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="file descriptors named by /proc")
def test_an_encrypted_original_is_flushed_too(owner_client, isolated_storage, synced, settings):
    import base64

    settings.LIGHTBOX_ENCRYPTION_KEYS = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    settings.LIGHTBOX_ENCRYPTION_KEY_ID = "k1"
    upload(owner_client, ct_variant())
    stored = Path(default_storage.path(Instance.objects.get().file_path))
    written = synced[-3]  # the encrypted copy, written beside original.dcm, then renamed
    assert written.parent == stored.parent and written.name.startswith(".original.dcm.")
    assert synced[-2:] == [stored.parent, stored.parent.parent]


def test_without_fsync_nothing_is_flushed(owner_client, isolated_storage, synced, settings):
    settings.LIGHTBOX_FSYNC = False
    upload(owner_client, ct_variant())
    assert synced == []


@pytest.fixture
def written_early(monkeypatch) -> list[tuple[Path, int]]:
    """The files (and flags) whose writing to disk is started as soon as they are staged:
    the kernel call runs for real; a test can only see that it was asked."""
    if storage._sync_file_range is None:
        pytest.skip("sync_file_range(2) is Linux's")
    calls: list[tuple[Path, int]] = []
    real = storage._sync_file_range

    def sync_file_range(fd, offset, nbytes, flags):
        calls.append((Path(os.readlink(f"/proc/self/fd/{fd}")), flags))
        return real(fd, offset, nbytes, flags)

    monkeypatch.setattr(storage, "_sync_file_range", sync_file_range)
    return calls


def test_an_uploaded_file_starts_reaching_the_disk_once_staged(
    owner_client, isolated_storage, written_early, synced
):
    upload(owner_client, ct_variant())
    assert [flags for _, flags in written_early] == [storage.SYNC_FILE_RANGE_WRITE]
    path = written_early[0][0]
    assert path.parent == staging_dir().resolve()
    assert path in synced  # and is flushed before its row commits, as before


def test_a_file_staged_from_a_stream_starts_reaching_the_disk_too(
    owner, isolated_storage, written_early
):
    instance_ingest(stream=io.BytesIO(ct_variant()), owner=owner, source="test")
    assert len(written_early) == 1
    assert written_early[0][0].parent == staging_dir().resolve()


def test_without_fsync_no_early_write_is_asked_for(
    owner_client, isolated_storage, written_early, settings
):
    settings.LIGHTBOX_FSYNC = False
    upload(owner_client, ct_variant())
    assert Instance.objects.count() == 1
    assert written_early == []


def test_health_endpoints_need_no_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "cache": "ok", "storage": "ok"}


def test_production_settings_pass_the_deploy_check():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "lightbox.example.org",
        "DATABASE_URL": "sqlite:////tmp/lightbox-deploy-check.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
