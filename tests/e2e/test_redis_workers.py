"""``python -m app`` with FOOTNOTE_WORKERS=2 and Redis: the workers share cache and limits.

The server runs as a real subprocess (uvicorn's supervisor plus two worker processes on one
listening socket). Which worker serves a connection is found from /proc: the worker process
holding the server end of that TCP connection. Requests are then sent deliberately to one
worker or the other over kept-alive connections.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.redis_cache import page_key
from tests.fakes.redis_server import RedisServer, free_port
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import SimulatedWeb

ROOT = Path(__file__).resolve().parents[2]
QUESTION = {"model": "footnote", "messages": [{"role": "user", "content": "Who was Ed Wood?"}]}
WARM_UP = {"model": "footnote", "messages": [{"role": "user", "content": "What is jazz?"}]}
LIMIT = 12


class Served:
    """The ``python -m app`` process: its port, workers and captured log."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.log: list[str] = []
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if sum("Application startup complete" in x for x in self.log) >= 2:
                self.started.set()

    def workers(self) -> list[int]:
        """PIDs of the worker processes (children of the supervisor started by ``spawn``;
        multiprocessing's resource tracker is a child too)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [
            int(pid)
            for pid in children.split()
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    def worker_of(self, conn: http.client.HTTPConnection) -> int:
        """The worker holding the server side of ``conn`` (after a response on it)."""
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        inode = _server_socket_inode(self.port, client_port)
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
                except OSError:  # closed meanwhile
                    continue
        raise AssertionError(f"no worker holds the connection from port {client_port}")


def _server_socket_inode(server_port: int, client_port: int) -> str:
    """Inode of the accepted socket 127.0.0.1:server_port <- 127.0.0.1:client_port."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return inode
    raise AssertionError(f"no server socket for client port {client_port}")


@pytest.fixture
def served(redis_url: str, searxng: FakeSearxng, simweb: SimulatedWeb) -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTNOTE_", "OPENAI_"))}
    env.update(
        {
            "FOOTNOTE_HOST": "127.0.0.1",
            "FOOTNOTE_PORT": str(port),
            "FOOTNOTE_WORKERS": "2",
            "FOOTNOTE_REDIS_URL": redis_url,
            # Per hour: nothing refills while the test runs, however busy the machine.
            "FOOTNOTE_RATE_LIMIT": f"{LIMIT}/hour",
            "FOOTNOTE_SEARCH_PROVIDER": "searxng",
            "FOOTNOTE_SEARXNG_URL": searxng.base_url,
            "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8",
            "FOOTNOTE_EXTRACT_WORKERS": "0",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Served(proc, port)
    try:
        if not server.started.wait(60):
            raise AssertionError("two workers did not start in 60 s:\n" + "".join(server.log))
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        assert proc.stderr is not None
        proc.stderr.close()


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: object = None
) -> tuple[int, dict[str, str], bytes]:
    payload = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if payload else {}
    conn.request(method, path, body=payload, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def _connections_per_worker(served: Served) -> dict[int, list[http.client.HTTPConnection]]:
    """Open kept-alive connections (with uncounted /healthz requests) until both workers hold
    one; the kernel gives each new connection to whichever worker accepts first."""
    by_worker: dict[int, list[http.client.HTTPConnection]] = {}
    for _ in range(80):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        assert _request(conn, "GET", "/healthz")[0] == 200
        by_worker.setdefault(served.worker_of(conn), []).append(conn)
        if len(by_worker) == 2:
            return by_worker
    raise AssertionError("80 connections all went to one worker")


def test_two_workers_share_cache_and_rate_limit(
    served: Served, simweb: SimulatedWeb, redis_server: RedisServer
) -> None:
    workers = served.workers()
    assert len(workers) == 2
    conns = _connections_per_worker(served)
    (pid_a, (a, *_)), (pid_b, (b, *_)) = conns.items()
    try:
        # Each worker answers once first (another question), so that no first-request
        # start-up cost in a fresh worker slows the Redis reads measured below.
        for conn in (a, b):
            assert _request(conn, "POST", "/v1/chat/completions", WARM_UP)[0] == 200
        simweb.requests.clear()
        # The cache: worker A reads the pages; worker B answers the same question from Redis.
        status, headers, body = _request(a, "POST", "/v1/chat/completions", QUESTION)
        assert status == 200, body
        fetched_by_a = set(simweb.requests)
        with redis_server.client() as client:
            # Pages still loading when A's answer went on (stragglers) are not cached.
            cached = {url for url in fetched_by_a if client.exists(page_key(url))}
        assert len(cached) >= 3
        simweb.requests.clear()
        status, _, _ = _request(b, "POST", "/v1/chat/completions", QUESTION)
        assert status == 200
        # B reads at most the pages A did not cache, none of those that A did.
        assert not cached & set(simweb.requests), "".join(served.log[-30:])

        # The limit: requests alternate between the workers and spend one allowance.
        statuses, remaining = [], []
        for i in range(LIMIT):
            status, headers, _ = _request((a, b)[i % 2], "GET", "/v1/models")
            statuses.append(status)
            remaining.append(int(headers["x-ratelimit-remaining-requests"]))
        # Four went on the chat requests above.
        assert statuses == [200] * (LIMIT - 4) + [429] * 4
        assert remaining == [*range(LIMIT - 5, -1, -1), 0, 0, 0, 0]
        assert {served.worker_of(a), served.worker_of(b)} == {pid_a, pid_b}
    finally:
        for conn in (c for cs in conns.values() for c in cs):
            conn.close()

    # A clean stop: SIGTERM ends the supervisor and both workers.
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(20) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
