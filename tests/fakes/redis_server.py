"""A REAL ``redis-server`` on a free loopback port, for the tests of shared state.

Not a fake: the Debian ``redis-server`` binary (``.ci/run`` installs it when missing), run
with no persistence (``--save '' --appendonly no``) in a temporary directory, bound to
127.0.0.1 only. ``RedisServer.start()`` waits (bounded) until it answers ``PING``;
``stop()`` terminates it (then kills it if it lingers).

Fixtures: ``redis_server`` (one per session) and ``redis_url`` (the session's server,
flushed before each test so tests never see each other's keys).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import pytest
import redis

__all__ = ["RedisServer", "free_port", "redis_server", "redis_url"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on ``127.0.0.1:<free port>``; ``url`` is ``redis://127.0.0.1:<port>/0``."""

    def __init__(self, *, port: int = 0, binary: str | None = None) -> None:
        """Prepare a server on ``port`` (0: a free port picked at start); call ``start()``."""
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self._requested_port = port
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        if self._proc is None:
            raise RuntimeError("redis-server is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        """A synchronous client (for test set-up and inspection)."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self, timeout: float = 10.0, attempts: int = 3) -> Self:
        """Start and wait until it answers ``PING`` (retrying a lost race for a free port)."""
        last: Exception | None = None
        for _ in range(attempts if self._requested_port == 0 else 1):
            try:
                self._start_once(timeout)
                return self
            except RuntimeError as exc:
                last = exc
                self.stop()
        raise RuntimeError(f"redis-server did not start: {last}")

    def _start_once(self, timeout: float) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="footnote-redis-")
        self.port = self._requested_port or free_port()
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--protected-mode", "yes",
                "--logfile", "",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode()
                raise RuntimeError(f"exited with {self._proc.returncode}: {err.strip()[-300:]}")
            try:
                with redis.Redis(port=self.port, socket_timeout=0.5) as probe:
                    if probe.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no PING answer within {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (kill after ``timeout`` seconds); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            if proc.stderr is not None:
                proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        """Start on entering the ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving the ``with`` block."""
        self.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real ``redis-server`` for the whole session, stopped at the end."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis URL, emptied first (``FLUSHALL``)."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
