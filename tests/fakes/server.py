"""Serve a raw ASGI app on loopback from a background thread: the base of every fake.

``ServerThread`` binds its listening sockets itself (so the port is known before uvicorn starts
and several loopback addresses can share one port), then runs uvicorn's ``Server.serve`` on a
fresh event loop in a daemon thread. Logs are quiet (no access log, warnings only) and
``stop()`` is clean: it first sets ``stopping`` so that handlers sleeping in ``pause()`` wake up,
then lets uvicorn shut down gracefully, so nothing is left for ``-W error`` to complain about.

Also the few ASGI helpers the fakes share (``read_body``, ``send_bytes``, ``send_json``,
``header``, ``pause``) and ``ServedFake``, the start/stop/context-manager mixin.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = [
    "ASGIApp",
    "Receive",
    "Scope",
    "Send",
    "ServedFake",
    "ServerThread",
    "bind_sockets",
    "header",
    "pause",
    "read_body",
    "send_bytes",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_POLL_S = 0.02


def bind_sockets(hosts: Sequence[str], port: int = 0, *, attempts: int = 50) -> list[socket.socket]:
    """Bind and listen on ``port`` at every address in ``hosts``; return the sockets.

    With ``port=0`` the kernel picks a free port on the first host and the others are bound to the
    same number; on a collision everything is closed and another port is tried (up to
    ``attempts`` times). An explicit port that is taken raises ``OSError`` at once.
    """
    if not hosts:
        raise ValueError("bind_sockets needs at least one host")
    last_error: OSError | None = None
    for _ in range(attempts if port == 0 else 1):
        sockets: list[socket.socket] = []
        chosen = port
        try:
            for host in hosts:
                # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets
                # whose proto says TCP; with proto 0, Nagle + delayed ACK add ~40 ms per
                # keep-alive request (uvicorn writes the head and the body separately).
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                sockets.append(sock)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, chosen))
                # Listen at once: two SO_REUSEADDR sockets may share a port until one listens.
                sock.listen(128)
                chosen = sock.getsockname()[1]
            return sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            last_error = exc
    assert last_error is not None
    raise last_error


class ServerThread:
    """An ASGI app served by uvicorn on one port at one or more loopback addresses.

    ``ServerThread(app, hosts="127.0.0.1", port=0, *, lifespan=False, name=...)``;
    ``start(timeout=10)`` binds, starts the
    thread and waits until uvicorn accepts connections; ``stop(timeout=10)`` shuts down.
    ``port``, ``host``, ``hosts`` and ``base_url`` describe where it listens; ``stopping`` is set
    as soon as ``stop()`` begins (pass it to ``pause()``).
    """

    def __init__(
        self,
        app: ASGIApp,
        hosts: str | Sequence[str] = "127.0.0.1",
        port: int = 0,
        *,
        lifespan: bool = False,
        name: str = "fake-server",
    ) -> None:
        """Prepare (but do not start) a server for ``app`` on ``hosts`` and ``port``.

        ``lifespan=True`` runs the ASGI lifespan protocol (start-up/shutdown hooks, e.g. for a
        Litestar app); the fakes have none.
        """
        self.app = app
        self.lifespan = lifespan
        self.hosts: tuple[str, ...] = (hosts,) if isinstance(hosts, str) else tuple(hosts)
        self.name = name
        self.stopping = threading.Event()
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The bound port (only known once started)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def host(self) -> str:
        """The first (main) address."""
        return self.hosts[0]

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` of the first address, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive and serving."""
        return bool(
            self._thread and self._thread.is_alive() and self._server and self._server.started
        )

    def start(self, timeout: float = 10.0) -> Self:
        """Bind the sockets, start serving in a thread and wait up to ``timeout`` seconds."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started")
        sockets = bind_sockets(self.hosts, self._requested_port)
        self._port = sockets[0].getsockname()[1]
        config = uvicorn.Config(
            self.app,
            interface="asgi3",
            http="h11",
            ws="none",
            lifespan="on" if self.lifespan else "off",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sockets), name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.002)
        return self

    def _run(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        try:
            asyncio.run(server.serve(sockets=sockets))
        except BaseException as exc:  # uvicorn raises SystemExit on start-up failure
            self._error = exc
        finally:
            for sock in sockets:
                sock.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully (force after ``timeout`` seconds); idempotent."""
        self.stopping.set()
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5.0)
            if self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not stop")

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


class ServedFake:
    """Mixin for a fake that owns a ``ServerThread`` in ``self.server``: lifecycle delegation."""

    server: ServerThread

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; returns ``self``."""
        self.server.start(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving."""
        self.server.stop(timeout)

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


# --- ASGI helpers -------------------------------------------------------------------------


def header(scope: Scope, name: str) -> str | None:
    """The value of request header ``name`` (case-insensitive), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


async def read_body(receive: Receive, limit: int = 64 * 1024 * 1024) -> bytes:
    """Read the whole request body (at most ``limit`` bytes, else ``ValueError``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError("request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[str, str]] = (),
    *,
    head: bool = False,
) -> None:
    """Send a complete response with ``content-length`` (no body for a HEAD request)."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if not any(k == b"content-length" for k, _ in raw):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_json(
    send: Send, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()
) -> None:
    """Send ``payload`` as compact JSON with ``content-type: application/json``."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await send_bytes(send, status, body, [("content-type", "application/json"), *headers])


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def pause(seconds: float, receive: Receive, stopping: threading.Event) -> bool:
    """Sleep ``seconds`` inside a handler; wake early if the client leaves or the server stops.

    Call it only after the request body has been read. Returns True if the whole delay elapsed
    (or the server is stopping, so the handler should answer now), False if the client
    disconnected (nothing more to send).
    """
    if seconds <= 0:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        while not stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            done, _ = await asyncio.wait({watcher}, timeout=min(remaining, _POLL_S))
            if done:
                return False
        return True
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
