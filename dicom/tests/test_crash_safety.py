"""``kill -9`` of the web process in the middle of 100 concurrent uploads loses no upload that
was acknowledged and leaves no half-stored instance."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pydicom
import requests

from dicom.tests.factories import ct_variant
from dicom.tests.server import ServerProcess

EMAIL = "crash@example.com"


def test_a_killed_server_loses_no_acknowledged_upload_and_no_instance_is_half_stored(tmp_path):
    server = ServerProcess(workdir=tmp_path)
    server.prepare(EMAIL)
    server.start()
    headers = {"Authorization": f"Bearer {server.token(EMAIL)}"}
    payloads = {pydicom.uid.generate_uid(): None for _ in range(100)}
    for sop in payloads:
        payloads[sop] = ct_variant(sop_uid=sop)
    acknowledged: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def send(sop: str) -> None:
        if killed.is_set():
            return
        try:
            response = requests.post(
                f"{server.url}/viewer/api/upload/",
                headers=headers,
                files={"files": (f"{sop}.dcm", payloads[sop])},
                timeout=30,
            )
        except requests.RequestException:
            return
        if 200 <= response.status_code < 300:
            with lock:
                acknowledged.append(sop)
                if len(acknowledged) == 30:
                    server.kill()  # SIGKILL while the other uploads are in flight
                    killed.set()

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, payloads))
    server.kill()
    assert killed.is_set()
    assert 30 <= len(acknowledged) < 100

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        stored = {row[0] for row in db.execute("SELECT sop_instance_uid FROM dicom_instance")}
    assert set(acknowledged) <= stored
    report = server.manage("verify_storage")
    assert "0 missing, 0 corrupt" in report.stdout, report.stdout + report.stderr

    server.start()  # it comes back and serves what it acknowledged
    try:
        token = server.token(EMAIL)
        listing = requests.get(
            f"{server.url}/viewer/api/studies/",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert int(listing.headers["X-Total-Count"]) == len(stored)
    finally:
        server.kill()
