"""Cancel a request's work the moment its client goes away.

uvicorn does not cancel an ASGI app when the client disconnects: it only answers the app's
next ``receive()`` with ``http.disconnect``. A handler busy researching (searching, fetching
pages) or waiting for the upstream never calls ``receive()`` again, so without help it would
finish a whole research request, upstream call included, for nobody.

``CancelOnDisconnect`` reads ``receive`` itself in a task next to the app and hands messages on
one at a time (no read-ahead: a zero-size buffer, so request bodies are not buffered here); when
``http.disconnect`` arrives before the app has finished, the app's task is cancelled. Every
fetch, the upstream request and any stream then unwind through their ``finally`` blocks,
closing their connections (the upstream sees its client hang up).
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

DISCONNECT: Message = {"type": "http.disconnect"}


class CancelOnDisconnect:
    """ASGI middleware: an HTTP request's app task is cancelled when its client disconnects."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, cancelling it on ``http.disconnect``."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        tx, rx = anyio.create_memory_object_stream[Any](0)
        answered = False

        async def tracking_send(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        with tx, rx:
            async with anyio.create_task_group() as tg:

                async def pump() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            # Nobody is left to answer: stop the app wherever it is. Once
                            # the response is complete (uvicorn then answers every receive
                            # with a disconnect) the app's remaining work is left alone.
                            if not answered:
                                tg.cancel_scope.cancel()
                            tx.close()  # the app's further receives get the disconnect
                            return
                        await tx.send(message)

                tg.start_soon(pump)
                await self.app(scope, _receiver(rx), tracking_send)
                tg.cancel_scope.cancel()


def _receiver(rx: MemoryObjectReceiveStream[Any]) -> Receive:
    async def receive() -> Any:
        try:
            return await rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return DISCONNECT

    return receive
