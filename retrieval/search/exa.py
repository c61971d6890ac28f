"""``ExaProvider``: web search through the Exa Search API.

``POST {base_url}/search`` with the key in ``x-api-key`` and the JSON body
``{"query", "numResults", "type": "auto"}`` answers
``{"requestId", "results": [{"url", "title", "publishedDate", "author", "text"?,
"highlights"?, "summary"?}, ...]}``. Page contents are only present when asked for (and
billed); this provider does not ask, but uses whichever of ``highlights``, ``summary`` and
``text`` comes back as the snippet, cut to a snippet's length because ``text`` may be a whole
page. ``publishedDate`` is an ISO timestamp, kept as ``YYYY-MM-DD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

DEFAULT_BASE_URL = "https://api.exa.ai"

_STATUS_MESSAGES = {402: "Exa: the account has run out of credits"}


class ExaProvider(ApiSearchProvider):
    """``SearchProvider`` backed by the Exa Search API."""

    name = "exa"
    label = "Exa"
    max_results = 100
    default_base_url = DEFAULT_BASE_URL

    async def _call(self, query: str, limit: int) -> list[SearchHit]:
        data = await self._request(
            "POST",
            "/search",
            headers={"x-api-key": self.api_key},
            payload={"query": query, "numResults": min(limit, self.max_results), "type": "auto"},
            status_messages=_STATUS_MESSAGES,
        )
        return parse_results(data, limit=limit)


def parse_results(data: Any, *, limit: int) -> list[SearchHit]:
    """Turn a decoded Exa response into hits; ``SearchUnavailable`` if it is malformed."""
    return collect_hits(results_list(data, ExaProvider.label, "results"), limit, _hit)


def _hit(item: Mapping[str, Any]) -> SearchHit | None:
    url = http_url(item.get("url"))
    if url is None:
        return None
    published = item.get("publishedDate")
    return SearchHit(
        url=url,
        title=clean_text(item.get("title")) or url,
        snippet=_snippet(item),
        published=normalize_date(published) if isinstance(published, str) else None,
        engine=ExaProvider.name,
    )


def _snippet(item: Mapping[str, Any]) -> str:
    # Highlights are the query-relevant sentences, so they beat a summary or the page start.
    highlights = item.get("highlights")
    if isinstance(highlights, list):
        joined = clean_text(" ".join(h for h in highlights if isinstance(h, str)))
        if joined:
            return joined
    for key in ("summary", "text"):
        text = clean_text(item.get(key))
        if text:
            return text
    return ""


def create(api_key: str | None, timeout_s: float) -> SearchProvider:
    """Registry factory: an ``ExaProvider``; ``ValueError`` names the setting when no key."""
    if not api_key or not api_key.strip():
        raise ValueError("the exa search provider needs an API key (FOOTNOTE_EXA_API_KEY)")
    return ExaProvider(api_key, timeout_s=timeout_s)
