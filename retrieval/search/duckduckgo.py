"""``DuckDuckGoProvider``: keyless web search through the ``ddgs`` metasearch library.

``ddgs`` scrapes DuckDuckGo and other engines (``backend="auto"`` spreads a query over
several, ``"duckduckgo"`` asks only DuckDuckGo) and is synchronous, so each search runs in a
worker thread under one overall deadline. A thread cannot be killed: on timeout it is
abandoned and finishes on ddgs's own (per-request) timeout. At most ``max_in_flight`` ddgs
calls run at once, abandoned ones included, so a stalled engine makes later searches fail
fast instead of piling up threads.

Failures map to ``SearchUnavailable`` (``SearchRateLimited`` for ddgs's rate-limit error,
also when ddgs wraps it in a ``DDGSException``). ddgs raises "No results found." when no
engine returned anything; that is answered as ``[]``, an empty result. ddgs 9 also treats a
blocked engine (non-200 answer) as returning nothing, so a blocked address looks like an
empty result too: put this provider last in a fallback chain, or give ``FallbackProvider``
``skip_empty=True``.

ddgs reads an optional proxy from ``DDGS_PROXY``; tests inject a fake via ``client_factory``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.to_thread
from ddgs import DDGS
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.protocols import SearchProvider
from retrieval.search._http import clean_text, collect_hits, http_url
from retrieval.types import SearchHit

_LABEL = "DuckDuckGo (ddgs)"
_NO_RESULTS = "No results found."
_MAX_RESULTS = 50


class TextSearcher(Protocol):
    """The part of ``ddgs.DDGS`` this provider uses."""

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Return result dicts with ``title``, ``href`` and ``body``."""
        ...


def default_client(timeout: int) -> TextSearcher:
    """A real ``ddgs.DDGS`` client whose HTTP requests time out after ``timeout`` seconds."""
    return DDGS(timeout=timeout)


class _Busy(Exception):
    """Every ddgs slot is taken by a call still running."""


class DuckDuckGoProvider:
    """``SearchProvider`` backed by ``ddgs`` (no API key)."""

    name = "duckduckgo"

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        backend: str = "auto",
        region: str = "us-en",
        safesearch: str = "moderate",
        max_in_flight: int = 4,
        client_factory: Callable[[int], TextSearcher] = default_client,
    ) -> None:
        """Prepare the provider; ``client_factory(timeout)`` builds one ddgs client per search."""
        if not timeout_s > 0:
            raise ValueError(f"{_LABEL} timeout must be positive, got {timeout_s!r}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.timeout_s = timeout_s
        self.backend = backend
        self.region = region
        self.safesearch = safesearch
        self.max_in_flight = max_in_flight
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """How many ddgs calls are running now, abandoned ones included."""
        with self._lock:
            return self._in_flight

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return at most ``limit`` http(s) hits for ``query``, deduplicated by URL, best first."""
        if limit < 1 or not query.strip():
            return []
        limit = min(limit, _MAX_RESULTS)
        try:
            with anyio.fail_after(self.timeout_s):
                rows = await anyio.to_thread.run_sync(
                    self._text, query.strip(), limit, abandon_on_cancel=True
                )
        except TimeoutError:
            raise SearchUnavailable(f"{_LABEL} did not answer within {self.timeout_s:g}s") from None
        except _Busy:
            raise SearchUnavailable(
                f"{_LABEL} is busy: earlier searches are still running past their deadline"
            ) from None
        except Exception as exc:
            raise _map_error(exc) from None
        if rows is None:
            return []
        return parse_results(rows, limit=limit)

    def _text(self, query: str, limit: int) -> list[dict[str, Any]] | None:
        # The slot is taken here, in the thread, so a call abandoned before its thread
        # started never holds one; it is given back only when ddgs really returns.
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                raise _Busy
            self._in_flight += 1
        try:
            client = self._client_factory(max(1, math.ceil(self.timeout_s)))
            return client.text(
                query,
                max_results=limit,
                backend=self.backend,
                region=self.region,
                safesearch=self.safesearch,
            )
        except DDGSException as exc:
            if str(exc) == _NO_RESULTS:
                return None
            raise
        finally:
            with self._lock:
                self._in_flight -= 1

    async def aclose(self) -> None:
        """Nothing to close: each search builds its own ddgs client."""


def _map_error(exc: Exception) -> SearchUnavailable:
    # ddgs collects an engine's exception and re-raises it as DDGSException(err).
    cause = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    if isinstance(exc, RatelimitException) or isinstance(cause, RatelimitException):
        return SearchRateLimited(f"{_LABEL} is rate-limiting requests")
    if isinstance(exc, TimeoutException) or isinstance(cause, TimeoutException):
        return SearchUnavailable(f"{_LABEL} timed out reaching its engines")
    if isinstance(exc, DDGSException):
        detail = " ".join(str(exc).split())[:200]
        return SearchUnavailable(f"{_LABEL} failed ({detail or type(exc).__name__})")
    return SearchUnavailable(f"{_LABEL} failed ({type(exc).__name__})")


def parse_results(rows: Any, *, limit: int) -> list[SearchHit]:
    """Turn ddgs text results (``title``, ``href``, ``body``) into hits; bad rows are skipped."""
    if not isinstance(rows, list):
        raise SearchUnavailable(f"{_LABEL} returned {type(rows).__name__}, not a list")
    return collect_hits(rows, limit, _hit)


def _hit(row: Mapping[str, Any]) -> SearchHit | None:
    url = http_url(row.get("href"))
    if url is None:
        return None
    return SearchHit(
        url=url,
        title=clean_text(row.get("title")) or url,
        snippet=clean_text(row.get("body")),
        engine="ddgs",
    )


def create(api_key: str | None = None, timeout_s: float = 10.0) -> SearchProvider:
    """Registry factory: a ``DuckDuckGoProvider`` (keyless, so ``api_key`` is ignored)."""
    return DuckDuckGoProvider(timeout_s=timeout_s)
