"""Log formatting: one JSON object per line (``json``) or classic text lines (``text``).

Every record carries the ``request_id`` of the request it was logged in (``null`` in JSON,
``-`` in text, outside one). Fields passed as ``extra={"fields": {...}}`` become top-level
JSON keys (the access log line uses this); in text mode they are appended as ``key=value``.
Nothing here logs request bodies or headers: callers pass only the fields they choose, and
the HTTP client libraries, which would log request URLs, are held at WARNING.

``logging_config`` returns a ``logging.config.dictConfig`` dictionary, which uvicorn also
takes as ``log_config``: worker processes apply it themselves, so they log the same way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from app.obs.context import current_request_id

FORMATS = ("json", "text")
# Loggers that would write request URLs or payloads at INFO/DEBUG.
QUIET_LIBRARIES = ("httpx", "httpcore", "httpx2", "openai", "hpack")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def resolve_format(setting: str, stream: TextIO | None = None) -> str:
    """``json`` or ``text``: ``auto`` is text on a terminal and JSON otherwise."""
    if setting in FORMATS:
        return setting
    stream = stream or sys.stderr
    return "text" if stream.isatty() else "json"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.request_id``; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp, level, logger, message, request_id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in _fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger [request_id] message key=value ...`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as text, with its fields appended."""
        given = getattr(record, "request_id", None)
        record.request_id = given or current_request_id() or "-"
        try:
            line = super().format(record)
        finally:
            record.request_id = given  # other handlers see the record as it was
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items() if v is not None)
        if not extra:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {extra}{sep}{tail}"


def logging_config(fmt: str, level: str = "INFO") -> dict[str, Any]:
    """A ``dictConfig`` for the whole process (root, uvicorn and footnote loggers).

    uvicorn's own access log is silenced: the ``footnote.access`` line replaces it, with
    the request id, timings and research counters. The HTTP client libraries stay at WARNING
    whatever ``level`` says: at INFO httpx logs every URL it requests, and search URLs carry
    the user's question (a request body must never reach the logs).
    """
    formatter = "json" if fmt == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            **{name: {"level": "WARNING"} for name in QUIET_LIBRARIES},
        },
    }
