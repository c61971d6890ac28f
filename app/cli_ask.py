"""``footnote ask``: one researched answer, through the API's request path, in this process.

The question becomes the ``POST /v1/chat/completions`` body a client would send; the app
built by ``create_app`` answers it in-process (``app.cli_asgi``). ``--json`` prints the
completion exactly as the API returns it. Otherwise the answer is streamed (as it is written)
and followed by its sources and the confidence of each basis field; with ``--schema`` the
structured answer is requested whole and shown indented.
"""

from __future__ import annotations

import json
import os
from contextlib import AsyncExitStack, nullcontext
from typing import Any, TextIO

import anyio
from litestar import Litestar

from app.cli_asgi import InProcessClient, running
from app.cli_errors import CliError
from app.cli_render import Progress, SseDecoder, render_content, render_tail
from app.cli_request import AskOptions, request_body
from app.server import create_app
from app.settings import Settings
from retrieval.progress import reporting

CHAT_PATH = "/v1/chat/completions"


def error_of(status: int | None, body: bytes) -> CliError:
    """The API's error response (or an in-band stream error, ``status=None``) as one line."""
    try:
        error = json.loads(body)["error"]
        message, code = str(error["message"]), error.get("code")
    except (ValueError, KeyError, TypeError):
        message, code = body.decode("utf-8", "replace")[:300] or "no details", None
    detail = ", ".join(str(part) for part in (status and f"HTTP {status}", code) if part)
    return CliError(f"{message} ({detail})" if detail else message, 1)


def _terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


async def ask(options: AskOptions, settings: Settings, out: TextIO, err: TextIO) -> None:
    """Answer ``options.question`` and print it to ``out`` (progress on ``err``)."""
    live = not options.json and _terminal(err)
    color = not options.json and _terminal(out) and "NO_COLOR" not in os.environ
    progress = Progress(err) if live else None
    app = create_app(settings)
    headers = {"authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    watching = reporting(progress.report) if progress is not None else nullcontext()
    failure: Exception | None = None
    with watching:
        async with anyio.create_task_group() as tg:
            if progress is not None:
                tg.start_soon(progress.animate)
            try:
                await _ask(app, headers, options, out, progress, color)
            except Exception as exc:  # raised below, outside the task group: not in a group
                failure = exc
            finally:
                if progress is not None:
                    progress.stop()
                tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _ask(
    app: Litestar,
    headers: dict[str, str],
    options: AskOptions,
    out: TextIO,
    progress: Progress | None,
    color: bool,
) -> None:
    failure: Exception | None = None
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(running(app, headers))
        except Exception as exc:
            raise CliError(f"could not start Footnote: {exc}", 2) from None
        try:
            if options.json or options.schema is not None:
                await _ask_whole(client, options, out, progress, color)
            else:
                await _ask_streamed(client, options, out, progress, color)
        except Exception as exc:
            # Raised once the app has shut down: inside its lifespan (a task group) it would
            # arrive wrapped in an ExceptionGroup.
            failure = exc
    if failure is not None:
        raise failure


async def _ask_whole(
    client: InProcessClient,
    options: AskOptions,
    out: TextIO,
    progress: Progress | None,
    color: bool,
) -> None:
    reply = await client.post(CHAT_PATH, request_body(options, stream=False))
    if progress is not None:
        progress.stop()
    if reply.status != 200:
        raise error_of(reply.status, reply.body)
    if options.json:
        _write_bytes(out, reply.body + b"\n")
        return
    completion = json.loads(reply.body)
    content = completion["choices"][0]["message"]["content"] or ""
    out.write(render_content(content, structured=True) + "\n\n")
    out.write(render_tail(content, completion, color=color) + "\n")


async def _ask_streamed(
    client: InProcessClient,
    options: AskOptions,
    out: TextIO,
    progress: Progress | None,
    color: bool,
) -> None:
    decoder = SseDecoder()
    text: list[str] = []
    meta: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    tty = out.isatty()

    def on_body(piece: bytes) -> None:
        nonlocal meta, failure
        for payload in decoder.feed(piece):
            if payload == "[DONE]":
                continue
            event = json.loads(payload)
            if "error" in event:
                failure = event
                continue
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if progress is not None and tty:
                        progress.stop()
                    text.append(content)
                    out.write(content)
                    if tty:
                        out.flush()
            if not event.get("choices") and "basis" in event:
                meta = event

    reply = await client.post(CHAT_PATH, request_body(options, stream=True), on_body)
    if reply.status != 200:
        raise error_of(reply.status, reply.body)
    answer = "".join(text)
    if answer and not answer.endswith("\n"):
        out.write("\n")
    if failure is not None:
        raise error_of(None, json.dumps(failure).encode())
    if meta is None:
        raise CliError("the answer stream ended without its sources and basis", 1)
    if progress is not None:
        progress.stop()
    out.write("\n" + render_tail(answer, meta, color=color) + "\n")


def _write_bytes(out: TextIO, data: bytes) -> None:
    """Write ``data`` unchanged (no re-encoding) when ``out`` has a byte buffer."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8"))
        return
    out.flush()
    buffer.write(data)
    buffer.flush()


def run_ask(options: AskOptions, settings: Settings, out: TextIO, err: TextIO) -> None:
    """Run ``ask`` on its own event loop."""
    anyio.run(ask, options, settings, out, err)
