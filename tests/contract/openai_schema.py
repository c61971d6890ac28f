"""OpenAI's own schemas for what Footnote sends: completions, stream chunks and errors.

``schemas/openai_chat.schema.json`` is transcribed from OpenAI's OpenAPI spec (see the README
beside it). ``SchemaTap`` wraps the app under test and checks every HTTP response it sends
against those schemas, in the server, before the last byte leaves: a test that has read a whole
response knows it was checked.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from tests.fakes.server import ASGIApp, Message, Receive, Scope, Send

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "openai_chat.schema.json"
_DEFS = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["$defs"]
CHAT_PATHS = ("/v1/chat/completions", "/v1beta/chat/completions", "/chat/completions")


def _validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/$defs/{name}", "$defs": _DEFS}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


COMPLETION = _validator("CreateChatCompletionResponse")
CHUNK = _validator("CreateChatCompletionStreamResponse")
ERROR = _validator("ErrorResponse")


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the schema, as ``path: message`` lines."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def check_stream(body: bytes) -> tuple[list[str], int]:
    """Problems of an SSE chat stream and how many chunks it held.

    Every event is ``data: <json>``; each is a chunk (or an in-band error object) and the last
    is ``data: [DONE]``.
    """
    events = [e for e in body.decode("utf-8").split("\n\n") if e.strip()]
    problems: list[str] = []
    if events and events[-1] == "data: [DONE]":
        events.pop()
    else:
        problems.append("the stream does not end with 'data: [DONE]'")
    chunks = 0
    for event in events:
        if not event.startswith("data: "):
            problems.append(f"not a data event: {event[:80]!r}")
            continue
        obj = json.loads(event.removeprefix("data: "))
        if isinstance(obj, dict) and "error" in obj:
            problems += [f"stream error event: {p}" for p in schema_errors(ERROR, obj)]
        else:
            chunks += 1
            problems += [f"chunk {chunks}: {p}" for p in schema_errors(CHUNK, obj)]
    return problems, chunks


class SchemaLog:
    """What the taps saw (counts by kind) and every schema violation, across servers."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def record(self, kind: str, problems: list[str], chunks: int = 0) -> None:
        """Count one checked response (and its chunks) and keep its problems."""
        with self._lock:
            self.seen[kind] += 1
            self.seen["chunk"] += chunks
            self.problems += problems

    def check(self, path: str, status: int, content_type: str, body: bytes) -> None:
        """Check one finished response against the schema its route and status call for."""
        where = f"{status} {path}"
        if status >= 400:
            if not content_type.startswith("application/json"):
                self.record("error", [f"{where}: error with content-type {content_type!r}"])
                return
            errors = schema_errors(ERROR, json.loads(body))
            self.record("error", [f"{where}: {p}" for p in errors])
        elif status == 200 and path.rstrip("/") in CHAT_PATHS:
            if content_type.startswith("text/event-stream"):
                problems, chunks = check_stream(body)
                self.record("stream", [f"{where}: {p}" for p in problems], chunks)
            else:
                errors = schema_errors(COMPLETION, json.loads(body))
                self.record("completion", [f"{where}: {p}" for p in errors])


class SchemaTap:
    """ASGI middleware: passes everything through and checks each HTTP response it sends."""

    def __init__(self, app: ASGIApp, log: SchemaLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope`` with ``app``, checking the response before its last byte is sent."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        content_type = ""
        body = bytearray()

        async def tapped(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    if bytes(key).lower() == b"content-type":
                        content_type = bytes(value).decode("latin-1")
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self.log.check(str(scope["path"]), status, content_type, bytes(body))
            await send(message)

        await self.app(scope, receive, tapped)
