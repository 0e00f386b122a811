"""Persistent connections are spread over the worker processes of one server
(``config/worker_balance.py``): unit tests of the shared loads and the balancer, then a
real uvicorn with two workers."""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import pytest

from config.worker_balance import (
    SLOT,
    STALE,
    WINDOW,
    ConnectionBalancer,
    WorkerLoads,
    listening_sockets,
)
from dicom.tests.server import ServerProcess


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scope(port: int, *headers: tuple[bytes, bytes]) -> dict:
    return {"type": "http", "client": ("127.0.0.1", port), "headers": list(headers)}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def loads_of(tmp_path, clock):
    path = tmp_path / "web.load"
    return lambda pid: WorkerLoads(path, pid, clock=clock)


def test_the_fair_share_is_the_live_workers_mean_rounded_up(loads_of):
    first, second = loads_of(101), loads_of(102)
    first.publish(4)
    second.publish(0)
    assert first.fair_share() == second.fair_share() == 2
    second.publish(1)
    assert first.fair_share() == 3  # 5 connections on 2 workers: 3 is fair, not 2


def test_a_worker_that_stopped_publishing_no_longer_counts(loads_of, clock):
    first, second = loads_of(101), loads_of(102)
    second.publish(0)
    clock.now += STALE + 1
    first.publish(4)
    assert first.fair_share() == 4  # the other worker is gone: all four are ours to serve


def test_two_workers_get_two_slots_and_a_restarted_one_takes_its_own_back(loads_of):
    first, second = loads_of(101), loads_of(102)
    assert first._slot != second._slot
    assert loads_of(101)._slot == first._slot


def test_the_last_worker_to_leave_removes_the_shared_file(loads_of, tmp_path):
    first, second = loads_of(101), loads_of(102)
    first.release()
    assert (tmp_path / "web.load").exists()
    second.release()
    assert not (tmp_path / "web.load").exists()


def over_share(loads_of, clock, connections: int, others: int) -> ConnectionBalancer:
    """A balancer that served ``connections`` connections beside a worker with ``others``."""
    loads_of(202).publish(others)
    balancer = ConnectionBalancer(clock=clock)
    balancer.start(loads_of(201))
    for port in range(50000, 50000 + connections):
        assert not balancer.request_ends_connection(scope(port))
    balancer.tick()
    return balancer


def test_a_worker_over_its_share_closes_connections_until_it_is_back_to_it(loads_of, clock):
    balancer = over_share(loads_of, clock, connections=4, others=0)
    ends = [balancer.request_ends_connection(scope(port)) for port in range(50000, 50004)]
    assert ends == [True, True, False, False]  # two of four are sent to the idle worker
    loads_of(202).publish(2)  # where they connected again
    balancer.tick()
    assert balancer.loads.fair_share() == 2
    assert not any(balancer.request_ends_connection(scope(p)) for p in range(50002, 50004))


def test_a_balanced_worker_closes_nothing(loads_of, clock):
    balancer = over_share(loads_of, clock, connections=2, others=2)
    assert not any(balancer.request_ends_connection(scope(p)) for p in range(50000, 50002))
    balancer = over_share(loads_of, clock, connections=3, others=2)
    assert not any(balancer.request_ends_connection(scope(p)) for p in range(50000, 50003))


def test_connections_quiet_for_a_second_are_not_counted(loads_of, clock):
    balancer = over_share(loads_of, clock, connections=4, others=0)
    clock.now += WINDOW + 0.1
    balancer.tick()
    assert not balancer.request_ends_connection(scope(50000))


def test_proxied_requests_and_a_balancer_not_started_close_nothing(loads_of, clock):
    balancer = over_share(loads_of, clock, connections=4, others=0)
    proxied = scope(50000, (b"x-forwarded-for", b"203.0.113.9"))
    assert not balancer.request_ends_connection(proxied)
    assert not ConnectionBalancer().request_ends_connection(scope(50000))


def test_a_bound_socket_counts_as_listening_and_a_connected_one_does_not():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))  # bound, not yet listening: a worker may start then
        inode = os.fstat(server.fileno()).st_ino
        assert inode in listening_sockets()
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                found = listening_sockets()
                assert os.fstat(client.fileno()).st_ino not in found
                assert os.fstat(accepted.fileno()).st_ino not in found
                assert inode in found


# --- a real server -----------------------------------------------------------------------


def loads_by_worker(pids: list[int]) -> dict[int, int]:
    """Connections per worker, as the workers published them in their shared file."""
    for path in Path("/dev/shm").glob("lightbox-web-*.load"):
        slots = {pid: n for pid, n, _ in SLOT.iter_unpack(path.read_bytes()) if pid}
        if set(pids) <= set(slots):
            return {pid: slots[pid] for pid in pids}
    return {}


class Client:
    """A persistent HTTP connection that connects again when told ``Connection: close``."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
        self.closes = 0

    def get(self, path: str = "/healthz") -> None:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200
        if response.getheader("connection") == "close":
            self.closes += 1
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, int(self.port), timeout=10)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="worker balancing needs Linux")
def test_connections_piled_on_one_worker_are_spread_over_both_then_left_alone(tmp_path):
    server = ServerProcess(workdir=tmp_path, workers=2)
    server.start()
    try:
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < 2 or not loads_by_worker(server.worker_pids()):
            assert time.monotonic() < deadline, "the two workers did not start"
            time.sleep(0.2)
        busy, idle = server.worker_pids()
        os.kill(idle, signal.SIGSTOP)  # it cannot accept: all four connections go to `busy`
        try:
            clients = [Client(server.url) for _ in range(4)]
            for client in clients:
                client.get()
        finally:
            os.kill(idle, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while loads_by_worker([busy, idle]) != {busy: 2, idle: 2}:
            assert time.monotonic() < deadline, loads_by_worker([busy, idle])
            for client in clients:
                client.get()
        moved = sum(client.closes for client in clients)
        assert moved >= 2
        for _ in range(100):  # balanced now: nothing more is closed
            for client in clients:
                client.get()
        assert sum(client.closes for client in clients) == moved
    finally:
        server.kill(signal.SIGTERM)
    assert not loads_by_worker([busy, idle]), "the shared file outlived the server"


def test_a_server_with_one_process_closes_no_connection(tmp_path):
    server = ServerProcess(workdir=tmp_path)
    server.start()
    try:
        clients = [Client(server.url) for _ in range(4)]
        for _ in range(50):
            for client in clients:
                client.get()
        assert sum(client.closes for client in clients) == 0
    finally:
        server.kill(signal.SIGTERM)
