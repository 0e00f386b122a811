"""A real Lightbox server process for tests: its own database, media and staging folders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "server-test-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    workdir: Path
    database_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    workers: int = 1  # uvicorn --workers: a master process and this many worker processes
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
        env.update(
            {
                "DATABASE_URL": self.database_url or f"sqlite:///{self.workdir / 'db.sqlite3'}",
                "MEDIA_ROOT": str(self.workdir / "media"),
                "LIGHTBOX_STAGING_DIR": str(self.workdir / "staging"),
                "THROTTLE_USER": "100000/hour",
                "THROTTLE_UPLOADS": "100000/hour",
                "LOG_LEVEL": "WARNING",
                **self.extra_env,
            }
        )
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def prepare(self, email: str) -> None:
        result = self.manage("migrate", "--noinput")
        assert result.returncode == 0, result.stderr
        code = (
            "from accounts.models import User; "
            f"User.objects.filter(email='{email}').exists() or "
            f"User.objects.create_user(email='{email}', password='{PASSWORD}')"
        )
        result = self.manage("shell", "-c", code)
        assert result.returncode == 0, result.stderr

    def spawn(self, *args: str) -> subprocess.Popen:
        """Another process of this deployment, e.g. a task worker."""
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=self._log(),
            stderr=subprocess.STDOUT,
        )

    def _log(self):  # an open file handed to the child process
        """Each process logs to a file in its folder, for failure reports."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        return (self.workdir / "process.log").open("ab")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *(["--workers", str(self.workers)] if self.workers > 1 else []),
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=self._log(),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("the server did not start")

    def worker_pids(self) -> list[int]:
        """The worker processes of a ``workers > 1`` server (the master's spawned children)."""
        assert self.process is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"multiprocessing.spawn" in cmdline:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def token(self, email: str) -> str:
        response = requests.post(
            f"{self.url}/api/token/", json={"email": email, "password": PASSWORD}, timeout=10
        )
        response.raise_for_status()
        return response.json()["access"]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def moto_start() -> tuple[str, subprocess.Popen]:
    """A real S3-compatible server (moto's server mode) on a free port."""
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"http://127.0.0.1:{port}", process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the S3 server did not start")
