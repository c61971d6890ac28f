"""``RoutingFetcher``: the index's own URLs are read from the index, the rest from the web.

Every URL is first looked up in the local index (one indexed SQLite read, well under a
millisecond); only a URL the index does not hold goes to the SSRF-guarded HTTP fetcher. A
``file://`` URL the index does not hold is refused by that fetcher as any non-HTTP URL is.
"""

from __future__ import annotations

from retrieval.index.store import LocalIndex
from retrieval.protocols import Fetcher
from retrieval.types import Page


class RoutingFetcher:
    """``Fetcher`` sending index URLs to ``index`` and everything else to ``web``."""

    def __init__(self, index: LocalIndex, web: Fetcher) -> None:
        self.index = index
        self.web = web

    async def fetch(self, url: str) -> Page:
        """The stored page when the index holds ``url``, else ``web.fetch(url)``."""
        page = await self.index.lookup(url)
        return page if page is not None else await self.web.fetch(url)
