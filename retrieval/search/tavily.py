"""``TavilyProvider``: web search through the Tavily Search API.

``POST {base_url}/search`` with ``Authorization: Bearer <key>`` and the JSON body
``{"query", "max_results", "search_depth"}`` answers
``{"results": [{"url", "title", "content", "score", "published_date"?}, ...]}``.
``max_results`` is capped at 20 by the API; ``published_date`` only comes with news results.
``search_depth`` is ``"basic"`` (one credit) or ``"advanced"`` (two credits, better snippets).

Besides 429, Tavily answers 432 when the plan's usage limit is reached and 433 when the
pay-as-you-go limit is: neither passes in seconds, so they are plain ``SearchUnavailable``
(the fallback chain moves on) with a message saying which limit it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx

from retrieval.protocols import SearchProvider
from retrieval.search._http import (
    ApiSearchProvider,
    clean_text,
    collect_hits,
    http_url,
    results_list,
)
from retrieval.text import normalize_date
from retrieval.types import SearchHit

DEFAULT_BASE_URL = "https://api.tavily.com"

_STATUS_MESSAGES = {
    432: "Tavily: the plan's usage limit is exceeded",
    433: "Tavily: the pay-as-you-go limit is exceeded",
}


class TavilyProvider(ApiSearchProvider):
    """``SearchProvider`` backed by the Tavily Search API."""

    name = "tavily"
    label = "Tavily"
    max_results = 20
    default_base_url = DEFAULT_BASE_URL

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        search_depth: Literal["basic", "advanced"] = "basic",
    ) -> None:
        """Prepare a provider for ``api_key``; ``client`` is borrowed (not closed) if given."""
        super().__init__(api_key, base_url=base_url, timeout_s=timeout_s, client=client)
        self.search_depth = search_depth

    async def _call(self, query: str, limit: int) -> list[SearchHit]:
        data = await self._request(
            "POST",
            "/search",
            headers={"Authorization": f"Bearer {self.api_key}"},
            payload={
                "query": query,
                "max_results": min(limit, self.max_results),
                "search_depth": self.search_depth,
            },
            status_messages=_STATUS_MESSAGES,
        )
        return parse_results(data, limit=limit)


def parse_results(data: Any, *, limit: int) -> list[SearchHit]:
    """Turn a decoded Tavily response into hits; ``SearchUnavailable`` if it is malformed."""
    return collect_hits(results_list(data, TavilyProvider.label, "results"), limit, _hit)


def _hit(item: Mapping[str, Any]) -> SearchHit | None:
    url = http_url(item.get("url"))
    if url is None:
        return None
    published = item.get("published_date")
    return SearchHit(
        url=url,
        title=clean_text(item.get("title")) or url,
        snippet=clean_text(item.get("content")),
        published=normalize_date(published) if isinstance(published, str) else None,
        engine=TavilyProvider.name,
    )


def create(api_key: str | None, timeout_s: float) -> SearchProvider:
    """Registry factory: a ``TavilyProvider``; ``ValueError`` names the setting when no key."""
    if not api_key or not api_key.strip():
        raise ValueError("the tavily search provider needs an API key (FOOTNOTE_TAVILY_API_KEY)")
    return TavilyProvider(api_key, timeout_s=timeout_s)
