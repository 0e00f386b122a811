"""Scale-out: two ASGI web processes and two task workers on PostgreSQL + Redis + S3.

Concurrent uploads go through both web processes (some identical ones to both at once), a
batch job is shared by both workers, and WebSocket clients connected to the *other* web
process receive the events. At the end every instance is stored exactly once and every
event was delivered to its user and to nobody else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import psycopg
import pydicom
import pytest
import requests
from django.db import connection

from dicom.tests.factories import ct_variant
from dicom.tests.server import ServerProcess, moto_start

pytestmark = pytest.mark.postgres
ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture
def cluster(tmp_path):
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("scale-out runs in the PostgreSQL + Redis pass (DATABASE_URL, REDIS_URL)")
    name = f"lb_scaleout_{uuid.uuid4().hex[:8]}"
    admin = connection.settings_dict
    dsn = (
        f"host={admin['HOST'] or '127.0.0.1'} port={admin['PORT'] or 5432} "
        f"user={admin['USER'] or 'postgres'} dbname=postgres"
    )
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}"')
    s3_url, s3 = moto_start()
    bucket = f"scaleout-{uuid.uuid4().hex[:8]}"
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    env = {
        **creds,
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "CACHE_KEY_PREFIX": name,
        "LIGHTBOX_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": s3_url,
        "AWS_S3_REGION_NAME": "us-east-1",
        "LIGHTBOX_JOB_HEARTBEAT_SECONDS": "2",
    }
    pg_url = (
        f"postgres://{admin['USER'] or 'postgres'}@{admin['HOST'] or '127.0.0.1'}:"
        f"{admin['PORT'] or 5432}/{name}"
    )
    processes = [
        ServerProcess(workdir=tmp_path / f"web{i}", database_url=pg_url, extra_env=env)
        for i in (1, 2)
    ]
    for process in processes:
        process.workdir.mkdir()
    processes[0].prepare(ALICE)
    processes[0].prepare(BOB)
    workers = [
        processes[i].spawn("jobs_worker", "--no-reload", "--no-startup-delay", "-v", "0")
        for i in (0, 1)
    ]
    for process in processes:
        process.start()
    try:
        yield {
            "web": processes,
            "workers": workers,
            "dsn": dsn.replace("dbname=postgres", f"dbname={name}"),
            "s3": (s3_url, bucket),
        }
    finally:
        for process in processes:
            process.kill()
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
        s3.terminate()
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def listen(url: str, token: str, events: list, ready: list, stop: asyncio.Event):
    import websockets

    async def run() -> None:
        async with websockets.connect(f"{url}/ws/processing/?token={token}") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] == "auth.ok"
            ready.append(True)
            while not stop.is_set():
                try:
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except TimeoutError:
                    continue

    return run()


def test_two_web_processes_and_two_workers_share_the_work_exactly_once(cluster):
    web_a, web_b = cluster["web"]
    alice_token, bob_token = web_a.token(ALICE), web_b.token(BOB)
    auth = {"Authorization": f"Bearer {alice_token}"}
    singles = {pydicom.uid.generate_uid(): None for _ in range(30)}
    for sop in singles:
        singles[sop] = ct_variant(sop_uid=sop)
    raced = [ct_variant() for _ in range(5)]  # each sent to both web processes at once
    batch = [ct_variant() for _ in range(120)]  # enough work that both workers get some
    alice_events: list = []
    bob_events: list = []

    def upload(args: tuple[str, bytes]) -> int:
        base, data = args
        response = requests.post(
            f"{base}/viewer/api/upload/", headers=auth, files={"files": ("x.dcm", data)}, timeout=60
        )
        return response.status_code

    async def scenario() -> dict:
        stop, ready = asyncio.Event(), []
        ws_url = web_b.url.replace("http", "ws")
        listeners = [
            asyncio.create_task(listen(ws_url, alice_token, alice_events, ready, stop)),
            asyncio.create_task(listen(ws_url, bob_token, bob_events, ready, stop)),
        ]
        while len(ready) < 2:
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        work = [(web_a.url if i % 2 else web_b.url, d) for i, d in enumerate(singles.values())]
        work += [(base, d) for d in raced for base in (web_a.url, web_b.url)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = await loop.run_in_executor(None, lambda: list(pool.map(upload, work)))
        payload = {
            "files": [
                {"filename": f"b{i}.dcm", "content": base64.b64encode(d).decode()}
                for i, d in enumerate(batch)
            ]
        }
        created = requests.post(f"{web_a.url}/upload/batch", json=payload, headers=auth, timeout=60)
        assert created.status_code in (200, 201, 202), created.text
        batch_id = created.json()["batch_id"]
        deadline = time.monotonic() + 180
        while True:
            status = requests.get(
                f"{web_b.url}/upload/batch/{batch_id}/status", headers=auth, timeout=30
            ).json()
            if status["status"] in ("completed", "failed") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let the last events arrive
        stop.set()
        await asyncio.gather(*listeners)
        return {"statuses": statuses, "batch": status, "batch_id": batch_id}

    outcome = asyncio.run(scenario())
    assert all(200 <= s < 300 for s in outcome["statuses"]), outcome["statuses"]
    assert outcome["batch"]["status"] == "completed", outcome["batch"]
    assert outcome["batch"]["processed_files"] == len(batch)

    with psycopg.connect(cluster["dsn"]) as db:
        sops = [r[0] for r in db.execute("SELECT sop_instance_uid FROM dicom_instance")]
        workers = {
            r[0]
            for r in db.execute("SELECT DISTINCT worker FROM jobs_jobitem WHERE status = 'done'")
        }
    expected = len(singles) + len(raced) + len(batch)
    assert len(sops) == len(set(sops)) == expected
    assert len(workers) == 2, f"the batch was not shared by both workers: {workers}"

    s3_url, bucket = cluster["s3"]
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])
        if o["Key"].endswith("/original.dcm")
    ]
    assert len(keys) == expected

    uploaded = [e for e in alice_events if e["type"] == "IMAGE_UPLOADED"]
    assert len({e["image"]["sopInstanceUID"] for e in uploaded}) == expected
    progress = [e for e in alice_events if e["type"] == "job.progress"]
    assert [e["processed"] for e in progress] == sorted(e["processed"] for e in progress)
    assert progress[-1]["percentage"] == 100.0
    assert [e for e in bob_events if e["type"] in ("IMAGE_UPLOADED", "job.progress")] == []
