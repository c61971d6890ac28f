"""Stage reports of one request ("searching 3 queries", "reading 10 pages", "writing").

A caller that wants to watch a request (the ``footnote ask`` command line) sets a callback
with ``reporting(callback)``; the pipeline and the answer engine call ``report(stage, **info)``
at their stage points. The callback lives in a ``ContextVar``, so it follows the request into
the tasks it starts and never leaks into another request. With no callback set, ``report`` is
one ``ContextVar.get``: the server pays nothing for it.

Stages and their ``info``: ``searching`` (``queries``: how many are searched at once),
``reading`` (``pages``: how many are fetched at once, ``done``: how many of them have finished;
reported at the start and after each page), ``writing`` (no info). A follow-up round reports
``searching`` and ``reading`` again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

log = logging.getLogger("footnote.progress")


class Reporter(Protocol):
    """Receives the stage reports of a request."""

    def __call__(self, stage: str, **info: int) -> None:
        """Called when the request enters ``stage`` (or makes progress within it)."""


_reporter: ContextVar[Reporter | None] = ContextVar("footnote_progress", default=None)


def report(stage: str, **info: int) -> None:
    """Tell the watching callback, if any, that the request is at ``stage``.

    A failing callback is logged and ignored: watching a request never breaks it.
    """
    callback = _reporter.get()
    if callback is None:
        return
    try:
        callback(stage, **info)
    except Exception:
        log.warning("progress callback failed at stage %r", stage, exc_info=True)


@contextmanager
def reporting(callback: Reporter) -> Iterator[None]:
    """Send the stage reports of the work done inside this block to ``callback``."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)
