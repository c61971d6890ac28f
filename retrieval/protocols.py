"""The seams between retrieval stages; each has real and fake implementations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from retrieval.types import Document, Page, Passage, SearchHit


class SearchProvider(Protocol):
    """Turns a query into ranked hits. Raises ``SearchUnavailable`` on failure."""

    name: str

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return at most ``limit`` hits for ``query``, best first."""
        ...


class ReadinessProbe(Protocol):
    """A backend that can say cheaply whether it answers (``GET /readyz``).

    Optional: a search provider without ``ready`` is reported as unchecked, because the
    only way to check it would be a search that spends the operator's quota.
    """

    async def ready(self) -> None:
        """Return when the backend answers; raise ``SearchUnavailable`` when it does not."""
        ...


class Fetcher(Protocol):
    """Fetches one URL. Raises ``FetchError`` (never hangs past its own deadline)."""

    async def fetch(self, url: str) -> Page:
        """Return the page at ``url``."""
        ...


class Extractor(Protocol):
    """Turns fetched bytes into readable text; CPU-bound and synchronous."""

    def extract(self, page: Page) -> Document | None:
        """Return the page's main text, or ``None`` when it has none."""
        ...


class Ranker(Protocol):
    """Splits documents into passages and orders them by relevance to a query."""

    def rank(self, query: str, documents: Sequence[Document], *, limit: int) -> list[Passage]:
        """Return at most ``limit`` passages, best first."""
        ...
