"""The request deadline (``FOOTNOTE_REQUEST_TIMEOUT``): no API request outlives it.

The whole handling of an API request, streaming its body included, runs inside one cancel
scope. When the deadline passes, everything the request started is cancelled (searches,
page fetches, extraction waits, the upstream LLM call: they all run in tasks of this
request), and the client gets:

- before the response has started: an OpenAI-shaped 504 (``code: "request_timeout"``);
- during a stream (``text/event-stream``): an in-band error event, then ``data: [DONE]``,
  as OpenAI reports failures after the first byte;
- during any other body (rare: bodies are sent in one piece): the body is ended.
"""

from __future__ import annotations

import logging

import anyio
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app import sse
from app.errors import ApiError, error_body, send_error
from app.ratelimit import is_api_path

log = logging.getLogger("footnote.deadline")


def timeout_error(timeout_s: float) -> ApiError:
    """The 504 for a request that ran out of time."""
    return ApiError(
        504,
        f"The request did not complete within {timeout_s:g} seconds.",
        type="server_error",
        code="request_timeout",
    )


class DeadlineMiddleware(ASGIMiddleware):
    """Cancels an API request after ``timeout_s`` seconds and answers as the module says."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request under the deadline; report a timeout in whatever way still can."""
        if not is_api_path(scope["path"]):
            await next_app(scope, receive, send)
            return
        started = streaming = ended = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, streaming, ended
            if message["type"] == "http.response.start":
                started = True
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        with anyio.move_on_after(self.timeout_s) as deadline:
            await next_app(scope, receive, tracking_send)
        if not deadline.cancelled_caught or ended:
            return
        log.warning("%s cancelled at the %g s request deadline", scope["path"], self.timeout_s)
        err = timeout_error(self.timeout_s)
        if not started:
            await send_error(send, err)
            return
        tail = b""
        if streaming:
            tail = sse.event(error_body(err.message, err.type, err.param, err.code)) + sse.DONE
        await send({"type": "http.response.body", "body": tail, "more_body": False})
