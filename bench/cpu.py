"""CPU per request by stage, in-process, with no network and no waiting.

Runs the service's own request path - ``engine.research`` (query planning, search, fetch,
extraction in worker threads, ranking), ``prompt.build_messages`` and ``engine.finalize``
(marker cleaning, attribution, basis) - against in-memory stand-ins for the network:

* search: the service's ``SearxngProvider`` talks to the fake SearXNG through an in-memory
  httpx transport; the fake's ranking and JSON encoding are not counted, the provider's work
  (building requests, parsing JSON, paging) is;
* fetch: the page's gzip body (as the simulated web sends it) is inflated with the fetcher's
  ``BoundedDecoder``; that inflation is counted, the HTTP exchange is not (it shows in the
  server CPU of the HTTP runs);
* upstream: the fake upstream's answer is composed in-process and not counted.

Extraction runs in the service's worker threads, but one at a time (anyio's thread limiter
set to 1): over the network pages arrive spread out and their extractions seldom overlap,
while here all pages are there at once, and ten extractions fighting over the GIL cost more
CPU than the same work done in turn. The ``10-pages, parallel`` shape shows that cost: the
default limiter, every extraction started together.

Stages are timed with ``time.thread_time`` where they run (the extractor and ranker are
wrapped, so follow-up rounds count too). ``total`` is ``time.process_time`` (every thread)
across the whole request minus the uncounted stand-in work; ``other`` is total minus the named
stages (planning, fusion, thread hand-offs, building structs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import httpx
import msgspec

from app.answer import engine
from app.answer.attribution import clean_markers
from app.answer.prompt import build_messages
from app.openai_types import ChatMessage
from app.services import Services, build_services
from app.tiers import TIERS, Tier
from bench.service import bench_settings
from retrieval.errors import FetchError
from retrieval.net.decoding import BoundedDecoder
from retrieval.protocols import Extractor, Ranker
from retrieval.rank import clear_cache as clear_rank_cache
from retrieval.search.searxng import SearxngProvider
from retrieval.types import Document, Page, Passage, SearchHit
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import Question, SimulatedWeb
from tests.fakes.upstream import compose_answer, parse_prompt

STAGES = ("search", "inflate", "extract", "rank", "prompt", "finalize", "other")
_MAX_DECODED = 10_000_000


class Meter:
    """CPU seconds counted per stage, and stand-in work to leave out of the total."""

    def __init__(self) -> None:
        """Start empty."""
        self.stages: dict[str, float] = {}
        self.excluded = 0.0

    def add(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` of CPU for ``stage``."""
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds


class MemorySearch:
    """The service's ``SearxngProvider`` over an in-memory transport to the fake SearXNG.

    The provider does what it does in production (paging included) without sockets; the
    fake's own ranking and JSON encoding are left out of the count. Queries run one at a time
    so that each one's thread CPU time is its own.
    """

    name = "memory"

    def __init__(self, searxng: FakeSearxng, meter: Meter) -> None:
        """Search ``searxng`` and count into ``meter``."""
        self._searxng = searxng
        self._meter = meter
        self._lock = asyncio.Lock()
        client = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))
        self._provider = SearxngProvider("http://searxng.invalid", client=client)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        t0 = time.thread_time()
        params = request.url.params
        payload = self._searxng.search(params.get("q", ""), int(params.get("pageno", "1")))
        body = json.dumps(payload).encode()
        self._meter.excluded += time.thread_time() - t0
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """What ``SearxngProvider.search`` returns for ``query``."""
        async with self._lock:
            excluded = self._meter.excluded
            t0 = time.thread_time()
            hits = await self._provider.search(query, limit=limit)
            spent = time.thread_time() - t0 - (self._meter.excluded - excluded)
            self._meter.add("search", spent)
            return hits


class MemoryFetcher:
    """``Fetcher`` over the corpus: inflates the gzip body the simulated web would send."""

    def __init__(self, web: SimulatedWeb, meter: Meter) -> None:
        """Serve ``web``'s pages and count into ``meter``."""
        self._web = web
        self._meter = meter
        self._gzipped: dict[str, bytes] = {}

    async def fetch(self, url: str) -> Page:
        """The page at ``url`` or ``FetchError``."""
        corpus_page = self._web.page_by_url(url)
        if corpus_page is None:
            raise FetchError("http_status", f"{url} answered 404")
        t0 = time.thread_time()
        packed = self._gzipped.get(url)
        if packed is None:
            packed = self._gzipped[url] = gzip.compress(corpus_page["html"].encode(), 6, mtime=0)
        t1 = time.thread_time()
        decoder = BoundedDecoder("gzip", _MAX_DECODED)
        body = decoder.feed(packed)
        self._meter.excluded += t1 - t0
        self._meter.add("inflate", time.thread_time() - t1)
        return Page(
            url=url,
            final_url=url,
            status=200,
            content_type="text/html",
            body=body,
            charset="utf-8",
            truncated=decoder.truncated,
        )


class TimedExtractor:
    """The service's extractor, adding each call's thread CPU time to ``extract``."""

    def __init__(self, inner: Extractor, meter: Meter) -> None:
        """Wrap ``inner``; counts go to ``meter`` (from any worker thread)."""
        self._inner = inner
        self._meter = meter
        self._lock = threading.Lock()

    def extract(self, page: Page) -> Document | None:
        """``inner.extract(page)``, timed."""
        t0 = time.thread_time()
        try:
            return self._inner.extract(page)
        finally:
            spent = time.thread_time() - t0
            with self._lock:
                self._meter.add("extract", spent)


class TimedRanker:
    """The service's ranker, adding each call's thread CPU time to ``rank``."""

    def __init__(self, inner: Ranker, meter: Meter) -> None:
        """Wrap ``inner``; counts go to ``meter``."""
        self._inner = inner
        self._meter = meter

    def rank(self, query: str, documents: Sequence[Document], *, limit: int) -> list[Passage]:
        """``inner.rank(...)``, timed."""
        t0 = time.thread_time()
        try:
            return self._inner.rank(query, documents, limit=limit)
        finally:
            self._meter.add("rank", time.thread_time() - t0)


@dataclass
class StageCpu:
    """Per-request CPU (ms) of one request shape over the sampled questions."""

    label: str
    pages_budget: int
    pages_mean: float
    samples: list[dict[str, float]] = field(default_factory=list)


PARALLEL = "10-pages, parallel"


def one_round(tier: Tier, **changes: Any) -> Tier:
    """``tier`` with ``changes`` and no follow-up search rounds: it reads ``max_pages`` pages."""
    names = {f.name for f in msgspec.structs.fields(Tier)}
    if "rounds" in names:
        changes["rounds"] = 1
    return msgspec.structs.replace(tier, **changes)


def memory_services(
    web: SimulatedWeb, searxng: FakeSearxng, meter: Meter, *, timed: bool
) -> Services:
    """The service's own ``build_services``, with search and fetch swapped for in-memory ones.

    The extractor and ranker are the production ones, configured as in production;
    extraction runs in threads (no process pool, nothing started) and there is no page
    cache. ``timed`` wraps extractor and ranker in meters.
    """
    built = build_services(bench_settings("http://searxng.invalid", None))
    extractor, ranker = built.extractor, built.ranker
    if timed:
        extractor, ranker = TimedExtractor(extractor, meter), TimedRanker(ranker, meter)
    changes: dict[str, Any] = {
        "search": MemorySearch(searxng, meter),
        "fetcher": MemoryFetcher(web, meter),
        "extractor": extractor,
        "ranker": ranker,
        "upstream": None,
        "closers": [],
    }
    names = {f.name for f in dataclasses.fields(Services)}
    changes.update({name: None for name in ("offload", "cache") if name in names})
    return dataclasses.replace(built, **changes)


def request_shapes() -> list[tuple[Tier, bool]]:
    """The ``(tier, parallel)`` request shapes to measure.

    The tiers and ``10-pages`` (base reading 10 pages: the CPU target's shape) extract one page
    at a time; ``10-pages, parallel`` lets all ten extractions loose in worker threads at once.
    """
    ten = one_round(
        TIERS["base"], name="10-pages", description="base, 10 pages", max_pages=10, max_hits=10
    )
    tiers = [TIERS[name] for name in ("speed", "lite", "base", "core") if name in TIERS]
    parallel = msgspec.structs.replace(ten, name=PARALLEL)
    return [*((t, False) for t in tiers), (ten, False), (parallel, True)]


async def _measure(
    services: Services, meter: Meter, tier: Tier, question: str
) -> tuple[dict[str, float], int]:
    meter.stages.clear()
    meter.excluded = 0.0
    # Every measured request is cold: no passages or tokens left from an earlier one.
    clear_rank_cache()
    c0 = time.process_time()
    found = await engine.research(services, tier, [ChatMessage(role="user", content=question)])
    t0 = time.thread_time()
    messages = build_messages(found.messages, found.question, found.sources)
    meter.add("prompt", time.thread_time() - t0)
    t1 = time.thread_time()
    answer = compose_answer(*parse_prompt(messages[-1]["content"]))
    t2 = time.thread_time()
    meter.excluded += t2 - t1
    text = clean_markers(answer, {s.number for s in found.sources})
    engine.finalize(found, text, 0, 0)
    meter.add("finalize", time.thread_time() - t2)
    total = time.process_time() - c0 - meter.excluded
    stages = {name: meter.stages.get(name, 0.0) * 1000 for name in STAGES if name != "other"}
    stages["other"] = total * 1000 - sum(stages.values())
    stages["total"] = total * 1000
    return stages, found.evidence.stats.pages_fetched


def measure_stage_cpu(
    web: SimulatedWeb, searxng: FakeSearxng, questions: Sequence[Question]
) -> list[StageCpu]:
    """CPU by stage for every request shape over ``questions`` (one warm-up request first)."""
    meter = Meter()
    services = memory_services(web, searxng, meter, timed=True)
    shapes = request_shapes()

    async def main() -> list[StageCpu]:
        limiter = anyio.to_thread.current_default_thread_limiter()
        threads = limiter.total_tokens
        if questions:  # imports, caches and the thread pool warm up outside the figures
            await _measure(services, meter, shapes[-1][0], questions[0]["question"])
        results = []
        for tier, parallel in shapes:
            limiter.total_tokens = threads if parallel else 1
            entry = StageCpu(label=tier.name, pages_budget=tier.max_pages, pages_mean=0.0)
            pages: list[int] = []
            for question in questions:
                stages, fetched = await _measure(services, meter, tier, question["question"])
                entry.samples.append(stages)
                pages.append(fetched)
            entry.pages_mean = sum(pages) / len(pages) if pages else float("nan")
            results.append(entry)
        return results

    return asyncio.run(main())
