"""Scriptable loopback HTTP servers for fetcher tests: real sockets, hostile behaviours.

Each ``LoopbackServer`` runs its own asyncio loop in a background thread, bound to a
loopback address and an ephemeral port, and records every connection and request so that
tests can assert that a refused fetch never reached it. One request per connection
(``Connection: close``) keeps the bookkeeping exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpcore
import pytest


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (header names lowercased)."""

    method: str
    target: str
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


def respond(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    """A handler answering with a complete response (``Content-Length`` set)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        all_headers = {**(headers or {}), "Content-Length": str(len(body))}
        writer.write(_head(status, all_headers) + body)
        await writer.drain()

    return handler


def html(body: str = "<html><body><p>Hello</p></body></html>") -> Handler:
    """A plain ``text/html; charset=utf-8`` page."""
    return respond(body=body.encode(), headers={"Content-Type": "text/html; charset=utf-8"})


def redirect(location: str, status: int = 302, headers: dict[str, str] | None = None) -> Handler:
    """A redirect to ``location`` (absolute or relative, sent verbatim)."""
    return respond(status, headers={"Location": location, **(headers or {})})


def gzipped(raw: bytes, content_type: str = "text/html; charset=utf-8") -> Handler:
    """A gzip-encoded response of ``raw`` (compressed once, when the handler is built)."""
    body = gzip.compress(raw, compresslevel=6)
    return respond(body=body, headers={"Content-Type": content_type, "Content-Encoding": "gzip"})


def drip(interval: float, content_type: str = "text/html") -> Handler:
    """Headers at once, then one body byte every ``interval`` seconds, forever."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": content_type}))
        while True:
            await writer.drain()
            await asyncio.sleep(interval)
            writer.write(b"<")

    return handler


def endless(content_type: str = "text/html", chunk: int = 65536) -> Handler:
    """Headers, then body bytes as fast as the client reads them, forever."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": content_type}))
        block = b"<p>" + b"a" * (chunk - 3)
        while True:
            writer.write(block)
            await writer.drain()

    return handler


def stall(seconds: float, then: Handler) -> Handler:
    """Wait ``seconds`` before answering with ``then`` (holds the connection open)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await then(request, writer)

    return handler


@dataclass
class LoopbackServer:
    """A threaded asyncio server on ``host`` whose routes are ``path -> Handler``."""

    host: str = "127.0.0.1"
    ssl_context: ssl.SSLContext | None = None
    routes: dict[str, Handler] = field(default_factory=dict)
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/", host: str | None = None) -> str:
        """The URL of ``path`` on this server (``host`` overrides the address shown)."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def start(self) -> None:
        """Start serving in a background thread; returns once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(ready),), daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("loopback server did not start")

    def stop(self) -> None:
        """Stop serving, cancel open handlers and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._serve(reader, writer)
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(on_connect, self.host, 0, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {}
            for header in header_lines:
                if header:
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
            request = Request(method, target, headers)
            self.requests.append(request)
            handler = self.routes.get(target.split("?")[0], respond(404))
            await handler(request, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away or sent garbage: nothing to record
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()


@contextlib.contextmanager
def serving(
    host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> Iterator[LoopbackServer]:
    """Run a ``LoopbackServer`` for the duration of a ``with`` block."""
    server = LoopbackServer(host=host, ssl_context=ssl_context)
    server.start()
    try:
        yield server
    finally:
        server.stop()


Dial = tuple[str, int]


def record_dials(monkeypatch: pytest.MonkeyPatch) -> list[Dial]:
    """Record every TCP connection the fetcher really dials; refuse any non-loopback one.

    Patches the backend the guard wraps, so it sees the address actually dialled. A bug
    that let a private non-loopback address through still never leaves the machine.
    """
    dials: list[Dial] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def spy(
        self: httpcore.AnyIOBackend,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.AsyncNetworkStream:
        dials.append((host, port))
        if not host.startswith("127."):
            raise httpcore.ConnectError(f"test refuses to dial {host}")
        return await original(self, host, port, timeout, local_address)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", spy)
    return dials
