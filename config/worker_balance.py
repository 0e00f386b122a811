"""Keeps the web worker processes of one server evenly loaded with persistent connections.

``uvicorn --workers N`` (and gunicorn) give every worker the same listening socket. The
worker that wakes first accepts every connection waiting, so a client that opens a few
persistent connections at once (an archive gateway pushing over four HTTP connections, a
benchmark's upload threads) can have all of them served by one process, that is one core,
for as long as they live, while the other workers idle. Measured with four upload
connections on two workers: about 1 run in 6 put all four on one worker and stored 144
instances/s instead of 200.

Each worker publishes how many connections it served in the last second to a small file
shared by the workers of its server (one slot per process). Every quarter of a second it
compares itself with the fair share, the total over the live workers rounded up. A worker
above it answers its next request(s) with ``Connection: close``; the client connects again,
and an idle worker, which is first to accept, takes the connection. A balanced server
closes nothing, and a server with one worker never does. Behind a reverse proxy the
client address is the proxy's view, not the connection, so proxied requests are left out.

The workers of one server hold the same listening socket (the master bound it before
starting them), so the file is named after that socket's inode. A single-process server has
bound no socket yet when its lifespan starts, and is left alone. The balancer runs when the
ASGI server sends the lifespan events (uvicorn does) on Linux; otherwise it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import mmap
import os
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SLOTS = 64
SLOT = struct.Struct("<qqd")  # pid, connections served in the last WINDOW, CLOCK_MONOTONIC
WINDOW = 1.0  # seconds: a connection that sent a request within it counts as active
TICK = 0.25  # seconds between two comparisons with the fair share
STALE = 2.0  # seconds: a slot not refreshed for longer belongs to no live worker
CONNECTION_CLOSE = (b"connection", b"close")


def listening_sockets() -> list[int]:
    """The inodes of the server sockets this process holds (Linux: ``/proc/self/fd``):
    bound, and connected to no peer. Not ``SO_ACCEPTCONN``: the master binds the socket,
    and the first worker to start serving calls ``listen``, so the others may start
    before it is set."""
    inodes = set()
    fds = Path("/proc/self/fd")
    for entry in fds.iterdir() if fds.is_dir() else ():
        try:
            target = os.readlink(entry)
            if target.startswith("socket:[") and _is_server_socket(int(entry.name)):
                inodes.add(int(target[len("socket:[") : -1]))
        except (OSError, ValueError):
            continue  # closed meanwhile (the listing's own descriptor, for one)
    return sorted(inodes)


def _is_server_socket(fd: int) -> bool:
    with socket.socket(fileno=os.dup(fd)) as sock:
        if sock.type != socket.SOCK_STREAM:
            return False
        address = sock.getsockname()
        if not address or (isinstance(address, tuple) and not address[1]):
            return False  # not bound
        try:
            sock.getpeername()
        except OSError:
            return True  # bound and connected to no one: it accepts connections
        return False


def load_file_path(inodes: list[int]) -> Path:
    shm = Path("/dev/shm")
    folder = shm if shm.is_dir() else Path(tempfile.gettempdir())
    return folder / f"lightbox-web-{'-'.join(map(str, inodes))}.load"


class WorkerLoads:
    """The shared file: one slot per worker process, read by every worker."""

    def __init__(self, path: Path, pid: int, clock: Any = time.monotonic) -> None:
        self.path, self.pid, self.clock = path, pid, clock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SLOTS * SLOT.size:
                os.ftruncate(fd, SLOTS * SLOT.size)
            self._map = mmap.mmap(fd, SLOTS * SLOT.size)
        finally:
            os.close(fd)
        self._slot = self._claim()

    def _claim(self) -> int:
        """Our slot: the one with our pid, else the first one no live worker holds."""
        with self.path.open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two workers starting together: one slot each
            now = self.clock()
            slots = [SLOT.unpack_from(self._map, i * SLOT.size) for i in range(SLOTS)]
            mine = next((i for i, (pid, _, _) in enumerate(slots) if pid == self.pid), None)
            if mine is None:
                free = [i for i, (pid, _, stamp) in enumerate(slots) if now - stamp > STALE]
                mine = free[0] if free else self.pid % SLOTS
            SLOT.pack_into(self._map, mine * SLOT.size, self.pid, 0, now)
        return mine

    def publish(self, connections: int) -> None:
        SLOT.pack_into(self._map, self._slot * SLOT.size, self.pid, connections, self.clock())

    def fair_share(self) -> int:
        """The connections each live worker would serve if they were spread evenly."""
        now = self.clock()
        live = [
            connections
            for pid, connections, stamp in SLOT.iter_unpack(self._map)
            if pid and now - stamp <= STALE
        ]
        return math.ceil(sum(live) / len(live)) if live else 0

    def release(self) -> None:
        """Give the slot back; the last worker to leave removes the file."""
        SLOT.pack_into(self._map, self._slot * SLOT.size, 0, 0, 0.0)
        now = self.clock()
        alone = all(not pid or now - stamp > STALE for pid, _, stamp in SLOT.iter_unpack(self._map))
        self._map.close()
        if alone:
            self.path.unlink(missing_ok=True)


class ConnectionBalancer:
    """This process's side: which connections it serves, and which to close. Used on the
    event loop only (requests are counted in ``handle``, before any thread hop)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.loads: WorkerLoads | None = None
        self._seen: dict[Any, float] = {}
        self._to_close = 0

    def request_ends_connection(self, scope: dict) -> bool:
        """Record an HTTP request of the connection its client address and port name, and
        say whether its response should close that connection. Requests through a proxy
        (``X-Forwarded-For``) are left alone: their client is not the connection."""
        client = scope.get("client")
        if self.loads is None or client is None:
            return False
        if any(name == b"x-forwarded-for" for name, _ in scope.get("headers", ())):
            return False
        key = tuple(client)
        if self._to_close > 0:
            self._to_close -= 1
            self._seen.pop(key, None)
            return True
        self._seen[key] = self.clock()
        return False

    def tick(self) -> None:
        if self.loads is None:
            return
        horizon = self.clock() - WINDOW
        self._seen = {key: seen for key, seen in self._seen.items() if seen >= horizon}
        connections = len(self._seen)
        self.loads.publish(connections)
        self._to_close = max(0, connections - self.loads.fair_share())

    async def run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(TICK)

    def start(self, loads: WorkerLoads) -> None:
        self.loads = loads

    def stop(self) -> None:
        if self.loads is not None:
            self.loads.release()
        self.loads, self._seen, self._to_close = None, {}, 0


balancer = ConnectionBalancer()


def connection_closing(send: Any) -> Any:
    """``send`` with ``Connection: close`` added to the response's headers."""

    async def send_closing(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), CONNECTION_CLOSE]}
        await send(message)

    return send_closing


def _balancer_start() -> asyncio.Task | None:
    if os.environ.get("LIGHTBOX_BALANCE_WORKERS", "true").lower() in {"0", "false", "no"}:
        return None
    inodes = listening_sockets()
    if not inodes:
        return None  # one process serving alone: nothing to balance
    try:
        balancer.start(WorkerLoads(load_file_path(inodes), os.getpid()))
    except OSError as exc:  # no shared file: serve unbalanced, and say why
        logger.warning("worker balancing is off: %s", exc)
        return None
    return asyncio.get_running_loop().create_task(balancer.run())


async def lifespan(scope: dict, receive: Any, send: Any) -> None:
    """The ASGI lifespan protocol: the balancer runs from start-up to shutdown."""
    task = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            task = _balancer_start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            balancer.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
