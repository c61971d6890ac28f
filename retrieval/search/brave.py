"""``BraveProvider``: web search through the Brave Search API.

``GET {base_url}/res/v1/web/search?q=...&count=N`` with the key in ``X-Subscription-Token``
answers ``{"web": {"results": [{"url", "title", "description", "page_age", "age"}, ...]}}``;
``web`` is absent when nothing matched. ``count`` is capped at 20 by the API. Snippets carry
``<strong>`` around matched words, which are stripped. ``page_age`` is an ISO timestamp,
``age`` a display string ("September 20, 2023" or "2 days ago"); the first that parses
becomes the ``YYYY-MM-DD`` published date.

A 429 carries ``X-RateLimit-Remaining``/``X-RateLimit-Reset`` as comma lists, one entry per
window (per second, per month): the wait is the reset of the exhausted window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from retrieval.protocols import SearchProvider
from retrieval.search._http import (
    MAX_RETRY_AFTER_S,
    ApiSearchProvider,
    clean_text,
    collect_hits,
    http_url,
    parse_retry_after,
    results_list,
)
from retrieval.text import normalize_date
from retrieval.types import SearchHit

DEFAULT_BASE_URL = "https://api.search.brave.com"


class BraveProvider(ApiSearchProvider):
    """``SearchProvider`` backed by the Brave Web Search API."""

    name = "brave"
    label = "Brave Search"
    max_results = 20
    default_base_url = DEFAULT_BASE_URL

    async def _call(self, query: str, limit: int) -> list[SearchHit]:
        data = await self._request(
            "GET",
            "/res/v1/web/search",
            headers={"X-Subscription-Token": self.api_key},
            params={"q": query, "count": str(min(limit, self.max_results))},
        )
        return parse_results(data, limit=limit)

    def _retry_after(self, headers: httpx.Headers) -> float | None:
        standard = parse_retry_after(headers.get("retry-after"))
        if standard is not None:
            return standard
        return rate_limit_reset(headers)


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until Brave's exhausted rate-limit window resets, from its ``X-RateLimit-*``.

    With ``Remaining: 0, 1000`` and ``Reset: 1, 1419704`` the per-second window is the one
    exhausted, so the answer is 1. When no window reads 0 the shortest reset is used.
    """
    resets = _numbers(headers.get("x-ratelimit-reset"))
    if not resets:
        return None
    remaining = _numbers(headers.get("x-ratelimit-remaining"))
    exhausted = [r for r, left in zip(resets, remaining, strict=False) if left <= 0]
    seconds = max(exhausted) if exhausted else min(resets)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _numbers(value: str | None) -> list[float]:
    numbers: list[float] = []
    for part in (value or "").split(","):
        try:
            numbers.append(float(part.strip()))
        except ValueError:
            return []
    return numbers


def parse_results(data: Any, *, limit: int) -> list[SearchHit]:
    """Turn a decoded Brave response into hits; ``SearchUnavailable`` if it is malformed."""
    if isinstance(data, dict) and data.get("web") is None:
        return []
    return collect_hits(results_list(data, BraveProvider.label, "web", "results"), limit, _hit)


def _hit(item: Mapping[str, Any]) -> SearchHit | None:
    url = http_url(item.get("url"))
    if url is None:
        return None
    published = None
    for key in ("page_age", "age"):
        value = item.get(key)
        published = normalize_date(value) if isinstance(value, str) else None
        if published:
            break
    return SearchHit(
        url=url,
        title=clean_text(item.get("title")) or url,
        snippet=clean_text(item.get("description")),
        published=published,
        engine=BraveProvider.name,
    )


def create(api_key: str | None, timeout_s: float) -> SearchProvider:
    """Registry factory: a ``BraveProvider``; ``ValueError`` names the setting when no key."""
    if not api_key or not api_key.strip():
        raise ValueError("the brave search provider needs an API key (FOOTNOTE_BRAVE_API_KEY)")
    return BraveProvider(api_key, timeout_s=timeout_s)
