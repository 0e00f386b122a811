"""Real processes: ``manage.py jobs_worker`` killed with SIGKILL mid-job and restarted, and
a real WebSocket client against ``uvicorn`` fed by a worker process through Redis.

They run on their own SQLite file (the web server, the workers and these tests are
separate processes), set up with ``manage.py migrate``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PYTHON = sys.executable

MAKE_BATCH = """
import json
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework_simplejwt.tokens import AccessToken
from dicom.tests.factories import ct_variant
from jobs.batches import batch_create_from_uploads
user, _ = get_user_model().objects.get_or_create(email="{email}")
files = [SimpleUploadedFile(f"ct-{{i}}.dcm", ct_variant()) for i in range({count})]
job = batch_create_from_uploads(uploads=files, owner=user, patient={{}})
print(json.dumps({{"job": str(job.pk), "user": user.pk, "token": str(AccessToken.for_user(user))}}))
"""

MAKE_USER = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
user, _ = get_user_model().objects.get_or_create(email="{email}")
print(json.dumps({{"user": user.pk, "token": str(AccessToken.for_user(user))}}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Environment of a throw-away Lightbox on a SQLite file, migrated."""
    base = tmp_path_factory.mktemp("lightbox")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "CACHE_KEY_PREFIX"}
    }
    env.update(
        DATABASE_URL=f"sqlite:///{base / 'db.sqlite3'}",
        LIGHTBOX_VAR_DIR=str(base),
        MEDIA_ROOT=str(base / "media"),
        LIGHTBOX_STAGING_DIR=str(base / "staging"),
        LIGHTBOX_JOB_STALE_SECONDS="600",  # recovery must come from the dead pid, not age
        LIGHTBOX_JOB_HEARTBEAT_SECONDS="1",
        LOG_LEVEL="WARNING",
        DEBUG="1",
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    return {"env": env, "db": base / "db.sqlite3"}


def manage(env: dict, *args: str, timeout: int = 180) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def shell(env: dict, code: str) -> dict:
    return json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])


def query(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db, timeout=20) as conn:
        return conn.execute(sql, args).fetchall()


def job_row(db: Path, job_id: str) -> tuple:
    return query(
        db,
        "SELECT status, processed, total, failed, task_id FROM jobs_job WHERE id=?",
        job_id.replace("-", ""),
    )[0]


def worker(env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "jobs_worker",
            "--no-startup-delay",
            "--interval",
            "0.2",
            "-v",
            "0",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_with_every_item_once(
    project,
):
    env, db, total = project["env"], project["db"], 150
    job_id = shell(env, MAKE_BATCH.format(email="kill@example.com", count=total))["job"]
    first = worker(env)
    deadline = time.monotonic() + 90
    while job_row(db, job_id)[1] < 3:
        assert time.monotonic() < deadline and first.poll() is None, "worker never started"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    status, processed, _, _, old_task = job_row(db, job_id)
    assert status == "processing" and 3 <= processed < total, "kill came too late"
    assert (
        query(
            db,
            "SELECT status FROM django_tasks_database_dbtaskresult WHERE id=?",
            old_task.replace("-", ""),
        )[0][0]
        == "RUNNING"
    )

    second = worker(env, "--batch")
    assert second.wait(timeout=240) == 0, second.stderr.read().decode()[-3000:]

    status, processed, total_after, failed, new_task = job_row(db, job_id)
    assert (status, processed, total_after, failed) == ("completed", total, total, 0)
    assert new_task != old_task
    assert (
        query(
            db,
            "SELECT exception_class_path FROM django_tasks_database_dbtaskresult WHERE id=?",
            old_task.replace("-", ""),
        )[0][0]
        == "jobs.recovery.WorkerLost"
    )
    items = query(
        db,
        "SELECT status, result, attempts FROM jobs_jobitem WHERE job_id=?",
        job_id.replace("-", ""),
    )
    assert len(items) == total and {s for s, _, _ in items} == {"done"}
    upload_ids = [json.loads(r)["upload_id"] for _, r, _ in items]
    assert len(set(upload_ids)) == total  # every item stored its own instance...
    assert query(db, "SELECT COUNT(*) FROM dicom_instance")[0][0] == total  # ...exactly once
    assert sum(a for _, _, a in items) <= total + 1  # only the interrupted item ran twice


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_reachable() -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(redis_url())
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(project):
    if not redis_reachable():
        pytest.skip(f"Redis not reachable at {redis_url()}: the cross-process test needs it")
    env = {
        **project["env"],
        "REDIS_URL": redis_url(),
        "CACHE_KEY_PREFIX": f"jobs-ws-{uuid.uuid4().hex[:8]}",
    }
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
    yield {"env": env, "port": port}
    process.terminate()
    process.wait(timeout=10)


def test_a_real_websocket_client_sees_its_job_through_redis_and_nothing_of_another_user(
    server,
):
    import websockets

    env, port = server["env"], server["port"]
    alice = shell(env, MAKE_BATCH.format(email="alice@example.com", count=5))
    bob = shell(env, MAKE_USER.format(email="bob@example.com"))

    async def listen(token: str, events: list, stop: asyncio.Event) -> None:
        url = f"ws://127.0.0.1:{port}/ws/processing/?token={token}"
        async with websockets.connect(url) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "auth.ok"
            events.append({"type": "ready"})
            while not stop.is_set():
                try:
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except TimeoutError:
                    continue

    async def scenario() -> tuple[list, list]:
        alice_events, bob_events, stop = [], [], asyncio.Event()
        listeners = [
            asyncio.create_task(listen(alice["token"], alice_events, stop)),
            asyncio.create_task(listen(bob["token"], bob_events, stop)),
        ]
        while len(alice_events) < 1 or len(bob_events) < 1:
            await asyncio.sleep(0.05)
        run = await asyncio.create_subprocess_exec(
            PYTHON,
            "manage.py",
            "jobs_worker",
            "--batch",
            "--no-startup-delay",
            "-v",
            "0",
            cwd=ROOT,
            env=env,
        )
        assert await asyncio.wait_for(run.wait(), 120) == 0
        deadline = time.monotonic() + 15
        while not any(e.get("status") == "completed" for e in alice_events):
            assert time.monotonic() < deadline, f"no completion seen: {alice_events}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*listeners)
        return alice_events, bob_events

    alice_events, bob_events = asyncio.run(scenario())
    progress = [e for e in alice_events if e["type"] == "job.progress"]
    assert {e["job_id"] for e in progress} == {alice["job"]}
    assert [e["processed"] for e in progress] == sorted(e["processed"] for e in progress)
    assert progress[-1]["percentage"] == 100.0 and progress[-1]["status"] == "completed"
    assert len([e for e in alice_events if e["type"] == "IMAGE_UPLOADED"]) == 5
    assert [e for e in bob_events if e["type"] != "ready"] == []
