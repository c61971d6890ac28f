"""Requests to the Footnote app inside this process, through ASGI: the API's own request path.

``footnote ask`` builds the app with ``create_app`` and sends it the same
``POST /v1/chat/completions`` a client would, so the command line and the API cannot drift
apart: decoding, tiers, research, writing, attribution and error mapping are all the app's.
The response body is handed over piece by piece as the app sends it, which is what lets the
command line print a streamed answer as it is written (``httpx.ASGITransport`` would collect
the whole body first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
from litestar import Litestar


class Reply(msgspec.Struct, kw_only=True):
    """Status, headers and (unless streamed to a callback) the body of one response."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


class InProcessClient:
    """Sends HTTP requests to a Litestar app running in this process."""

    def __init__(self, app: Litestar, headers: dict[str, str] | None = None) -> None:
        self._app = app
        self._headers = headers or {}

    async def post(
        self,
        path: str,
        body: bytes,
        on_body: Callable[[bytes], None] | None = None,
    ) -> Reply:
        """POST ``body`` (JSON) to ``path``; a 2xx body goes to ``on_body`` if given.

        With ``on_body`` the ``Reply`` of a 2xx response has an empty body: each piece was
        passed on as soon as the app sent it. Any other response keeps its body (the error).
        """
        headers = {
            "host": "footnote.local",
            "content-type": "application/json",
            "content-length": str(len(body)),
            **self._headers,
        }
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            "state": {},
        }
        sent_request = False
        finished = anyio.Event()
        reply = Reply(status=0, headers={})
        pieces: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            # The client stays connected until the response is complete: a streaming
            # response watches for a disconnect and would stop at once.
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                reply.status = message["status"]
                reply.headers = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                piece = message.get("body", b"")
                if piece:
                    if on_body is not None and 200 <= reply.status < 300:
                        on_body(piece)
                    else:
                        pieces.append(piece)
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self._app(scope, receive, send)  # type: ignore[arg-type]
        finally:
            finished.set()
        reply.body = b"".join(pieces)
        return reply


@asynccontextmanager
async def running(
    app: Litestar, headers: dict[str, str] | None = None
) -> AsyncIterator[InProcessClient]:
    """Run the app's lifespan (services built and closed) around an ``InProcessClient``."""
    async with app.lifespan():
        yield InProcessClient(app, headers)
