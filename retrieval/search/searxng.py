"""``SearxngProvider``: web search through a SearXNG instance's JSON API.

``GET {base_url}/search?q=...&format=json&pageno=1`` answers
``{"results": [{"url", "title", "content", "publishedDate", "engine"}, ...]}``. The JSON
format must be enabled in the instance's ``settings.yml`` (``search.formats``), or SearXNG
answers 403. Every failure - transport error, timeout, non-200 status, oversized or
malformed body - is raised as ``SearchUnavailable`` with a one-line message naming the cause
and status; a 429 is ``SearchRateLimited`` carrying its ``Retry-After``, like the key-based
providers (``retrieval.search._http``), so ``FallbackProvider`` can cool it down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import msgspec

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.search._http import (
    check_endpoint,
    clean_text,
    collect_hits,
    http_url,
    json_client,
    parse_retry_after,
    read_capped,
    results_list,
)
from retrieval.text import normalize_date
from retrieval.types import SearchHit

# SearXNG answers about ten results a page; larger limits read further pages.
PAGE_SIZE = 10
MAX_PAGES = 3
LABEL = "SearXNG"


class SearxngProvider:
    """``SearchProvider`` backed by a SearXNG instance (an operator-configured URL)."""

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """Search ``base_url``; ``client`` is borrowed (not closed) when given."""
        check_endpoint(LABEL, base_url, timeout_s)
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client or json_client(timeout_s)

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return at most ``limit`` http(s) hits for ``query``, deduplicated by URL, best first."""
        if limit < 1 or not query.strip():
            return []
        pages = min(MAX_PAGES, max(1, math.ceil(limit / PAGE_SIZE)))
        if pages == 1:
            return parse_results(await self._get(query.strip(), 1), limit=limit)
        # Deeper budgets ask the next results pages at once rather than one after another;
        # a later page that fails only shortens the list.
        bodies: list[bytes | None] = [None] * pages

        failed: list[SearchUnavailable] = []

        async def one(page: int) -> None:
            try:
                bodies[page - 1] = await self._get(query.strip(), page)
            except SearchUnavailable as exc:
                # Only the first page matters; later pages are extras. Kept, not raised
                # inside the task group, which would wrap it in an ExceptionGroup.
                if page == 1:
                    failed.append(exc)

        async with anyio.create_task_group() as tg:
            for page in range(1, pages + 1):
                tg.start_soon(one, page)
        if failed:
            raise failed[0]
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for body in bodies:
            if body is None:
                continue
            for hit in parse_results(body, limit=PAGE_SIZE * 3):
                if hit.url not in seen:
                    seen.add(hit.url)
                    hits.append(hit)
        return hits[:limit]

    async def _get(self, query: str, page: int) -> bytes:
        params = {"q": query, "format": "json", "pageno": str(page)}
        try:
            # httpx timeouts are per network operation; this bounds the whole exchange.
            with anyio.fail_after(self.timeout_s):
                async with self._client.stream(
                    "GET", f"{self.base_url}/search", params=params
                ) as response:
                    _check_status(response.status_code, response.headers)
                    return await read_capped(response, LABEL)
        except (TimeoutError, httpx.TimeoutException):
            raise SearchUnavailable(f"{LABEL} did not answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            detail = " ".join(str(exc).split())[:200]
            raise SearchUnavailable(
                f"{LABEL} is unreachable ({type(exc).__name__}: {detail})"
            ) from None
        except httpx.InvalidURL as exc:
            # An over-long query, say: no HTTPError, but still a search that failed.
            raise SearchUnavailable(f"{LABEL} request failed (InvalidURL: {exc})") from None

    async def ready(self) -> None:
        """``GET /healthz`` of the instance: answers without running any search engine."""
        try:
            with anyio.fail_after(self.timeout_s):
                response = await self._client.get(f"{self.base_url}/healthz")
        except (TimeoutError, httpx.TimeoutException):
            raise SearchUnavailable(f"{LABEL} did not answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"{LABEL} is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SearchUnavailable(f"{LABEL} health check answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            await self._client.aclose()


def _check_status(status: int, headers: Mapping[str, str]) -> None:
    if status == 200:
        return
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        raise SearchRateLimited(
            f"{LABEL} is rate-limiting requests (HTTP 429{hint})", retry_after=retry_after
        )
    if status == 403:
        raise SearchUnavailable(
            f"{LABEL} refused the request (HTTP 403); is the json format enabled in its "
            "settings.yml (search.formats)?"
        )
    raise SearchUnavailable(f"{LABEL} answered HTTP {status}")


def parse_results(body: bytes, *, limit: int) -> list[SearchHit]:
    """Turn a SearXNG JSON body into hits; raises ``SearchUnavailable`` if it is malformed.

    Results without an http(s) URL and malformed single results are skipped; a URL that
    several engines returned is kept once, at its best position.
    """
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise SearchUnavailable(f"{LABEL} returned malformed JSON") from None
    return collect_hits(results_list(data, LABEL, "results"), limit, _hit)


def _hit(item: Mapping[str, Any]) -> SearchHit | None:
    url = http_url(item.get("url"))
    if url is None:
        return None
    engine = item.get("engine")
    if not isinstance(engine, str):
        engines = item.get("engines")
        names = engines if isinstance(engines, list) else []
        engine = ",".join(e for e in names if isinstance(e, str))
    published = item.get("publishedDate")
    return SearchHit(
        url=url,
        title=clean_text(item.get("title")) or url,
        snippet=clean_text(item.get("content")),
        published=normalize_date(published) if isinstance(published, str) else None,
        engine=engine,
    )
