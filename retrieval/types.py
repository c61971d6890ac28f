"""Frozen value types passed between the retrieval stages."""

from __future__ import annotations

import msgspec


class SearchHit(msgspec.Struct, frozen=True):
    """One search-engine result, before anything was fetched."""

    url: str
    title: str
    snippet: str = ""
    published: str | None = None
    engine: str = ""
    # True when the hit comes from the local index (a private document), not the web.
    internal: bool = False


class Page(msgspec.Struct, frozen=True):
    """Bytes fetched for one URL, already inflated and capped."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    charset: str | None = None
    truncated: bool = False


class Document(msgspec.Struct, frozen=True):
    """The readable main text of one fetched page."""

    url: str
    title: str
    text: str
    published: str | None = None
    # True when the text was read from the local index (a private document), not the web.
    internal: bool = False


class Passage(msgspec.Struct, frozen=True):
    """A ranked span of a document: ``documents[doc].text[start:end] == text``."""

    doc: int
    start: int
    end: int
    text: str
    score: float


class Stats(msgspec.Struct, frozen=True):
    """Counters and stage timings of one evidence gathering run."""

    searches: int = 0
    pages_attempted: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    # Page cache lookups (zero without a cache): a hit needed no fetch or extraction.
    cache_hits: int = 0
    cache_misses: int = 0
    # Research rounds run: 1, plus each follow-up round (stopped early once covered).
    rounds: int = 1
    timings_ms: dict[str, float] = msgspec.field(default_factory=dict)
    cpu_ms: dict[str, float] = msgspec.field(default_factory=dict)


class Evidence(msgspec.Struct, frozen=True):
    """Everything the answer may rest on: documents and their best passages."""

    queries: tuple[str, ...]
    hits: tuple[SearchHit, ...]
    documents: tuple[Document, ...]
    passages: tuple[Passage, ...]
    stats: Stats = Stats()
