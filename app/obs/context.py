"""The per-request record, reachable from anywhere in the request through a ``ContextVar``.

The middleware opens a ``RequestRecord`` for every HTTP request; the chat handler and the
error mapping fill it in (``note_research``, ``note_usage``, ``note_error``); the middleware
reads it back for the access log line and the metrics once the response is sent. Outside a request
(start-up, background tasks) there is no record and the ``note_*`` functions do nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from retrieval.types import Stats

# The longest client-chosen request id echoed back; anything longer is replaced.
MAX_REQUEST_ID = 128


@dataclass
class RequestRecord:
    """What one request did, for its access log line and the metrics."""

    request_id: str
    tier: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    searches: int | None = None
    pages_fetched: int | None = None
    pages_failed: int | None = None
    cache_hits: int | None = None
    cache_misses: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_type: str | None = None
    error_code: str | None = None


_current: ContextVar[RequestRecord | None] = ContextVar("footnote_request", default=None)


def mint_request_id() -> str:
    """A fresh request id, shaped like OpenAI's (``req_`` and 32 hex digits)."""
    return f"req_{uuid.uuid4().hex}"


def accept_request_id(given: str | None) -> str:
    """The client's ``x-request-id`` when it is sane, else a fresh one.

    Sane means 1-128 visible ASCII characters (no spaces or control characters), so the
    id can be echoed in a header and written to a log line without escaping surprises.
    """
    if given and len(given) <= MAX_REQUEST_ID and all("!" <= ch <= "~" for ch in given):
        return given
    return mint_request_id()


def current() -> RequestRecord | None:
    """The record of the request being served, if any."""
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request being served, if any (used by every log line)."""
    record = _current.get()
    return record.request_id if record is not None else None


def open_record(request_id: str) -> tuple[RequestRecord, Token[RequestRecord | None]]:
    """Start a request's record; returns it and the token ``close_record`` needs."""
    record = RequestRecord(request_id=request_id)
    return record, _current.set(record)


def close_record(token: Token[RequestRecord | None]) -> None:
    """End the request's record (restores whatever was current before)."""
    _current.reset(token)


def note_research(tier: str, stats: Stats, stages_ms: Mapping[str, float]) -> None:
    """Record what research took: the tier, stage timings, searches, pages and cache use."""
    record = _current.get()
    if record is None:
        return
    record.tier = tier
    record.stages_ms = dict(stages_ms)
    record.searches = stats.searches
    record.pages_fetched = stats.pages_fetched
    record.pages_failed = stats.pages_failed
    record.cache_hits = stats.cache_hits
    record.cache_misses = stats.cache_misses


def note_usage(prompt_tokens: int, completion_tokens: int, upstream_ms: float | None) -> None:
    """Record the upstream tokens of the answer (research included) and its writing time."""
    record = _current.get()
    if record is None:
        return
    record.prompt_tokens = prompt_tokens
    record.completion_tokens = completion_tokens
    if upstream_ms:
        record.stages_ms["upstream"] = upstream_ms


def note_error(type_: str, code: str | None) -> None:
    """Record the OpenAI error type and code a client was answered with."""
    record = _current.get()
    if record is not None:
        record.error_type = type_
        record.error_code = code
