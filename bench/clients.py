"""CPU of Footnote's network clients per call, against the world process (latency off).

The HTTP runs show more server CPU per request than the in-process stages; this measures where
the difference goes, one client call at a time, in the bench's own process
(``time.process_time``, all threads: the servers answering are in the world's process):

* ``fetch``: ``HttpFetcher.fetch`` of a corpus page (SSRF guard, httpx, inflation), with the
  simulated web gzipping (as it does by default) and sending identity, to show what connection
  reuse is worth;
* ``search``: ``SearxngProvider.search`` of one query (10 results);
* ``upstream``: ``Upstream.complete`` (the ``openai`` SDK) with a realistic prompt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from app.answer.upstream import Upstream
from bench.metrics import p50, p95
from bench.world import World
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from retrieval.search.searxng import SearxngProvider
from tests.fakes.simweb import Question
from tests.fakes.upstream import render_prompt

WARMUP = 3


@dataclass
class ClientCpu:
    """CPU per call of one client."""

    name: str
    calls: int
    ms: list[float] = field(default_factory=list)
    connections_opened: int | None = None

    @property
    def p50(self) -> float:
        """Median CPU ms per call."""
        return p50(self.ms)

    @property
    def p95(self) -> float:
        """95th percentile CPU ms per call."""
        return p95(self.ms)


async def _timed(name: str, calls: Sequence[Callable[[], Awaitable[object]]]) -> ClientCpu:
    for call in calls[:WARMUP]:
        await call()
    out = ClientCpu(name=name, calls=len(calls) - WARMUP)
    for call in calls[WARMUP:]:
        c0 = time.process_time()
        await call()
        out.ms.append((time.process_time() - c0) * 1000)
    return out


async def _fetches(world: World, urls: Sequence[str], gzip: bool) -> ClientCpu:
    world.set_gzip(gzip)
    fetcher = HttpFetcher(FetchConfig(allow_private=("127.0.0.0/8",)))
    try:

        def fetch(url: str) -> Callable[[], Awaitable[object]]:
            return lambda: fetcher.fetch(url)

        result = await _timed(
            "fetch, gzip" if gzip else "fetch, identity", [fetch(u) for u in urls]
        )
        reused = _reused_connections(fetcher)
        if reused is not None:
            result.connections_opened = len(urls) - reused
    finally:
        await fetcher.aclose()
        world.set_gzip(True)
    return result


def _reused_connections(fetcher: HttpFetcher) -> int | None:
    """Keep-alive reuses in the fetcher's pool (httpcore internals; None if they moved).

    Connections that were closed are gone from the pool, so requests minus this count is
    how many TCP connections had to be opened.
    """
    pool = getattr(getattr(getattr(fetcher, "_client", None), "_transport", None), "_pool", None)
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    counts = [getattr(getattr(c, "_connection", None), "_request_count", 0) for c in connections]
    return sum(max(0, int(n) - 1) for n in counts)


async def _measure(world: World, questions: Sequence[Question], n: int) -> list[ClientCpu]:
    urls = [u for u in world.page_urls if "127.0.0.2:" in u][: n + WARMUP]
    results = [await _fetches(world, urls, True), await _fetches(world, urls, False)]
    search = SearxngProvider(world.searxng_url)
    try:
        texts = [q["question"] for q in questions][: n + WARMUP]

        def query(text: str) -> Callable[[], Awaitable[object]]:
            return lambda: search.search(text, limit=10)

        results.append(await _timed("search (1 query)", [query(t) for t in texts]))
    finally:
        await search.aclose()
    upstream = Upstream(
        base_url=world.upstream_url,
        api_key="bench",
        model="fake-model",
        timeout_s=30,
        max_retries=0,
    )
    try:
        sources = [("A page", "http://127.0.0.2/a", "Some evidence sentence. " * 60)] * 6
        messages = [
            {"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": render_prompt("What is evidence?", sources)},
        ]

        def complete() -> Callable[[], Awaitable[object]]:
            return lambda: upstream.complete(messages, {})

        results.append(await _timed("upstream (openai SDK)", [complete() for _ in texts]))
    finally:
        await upstream.aclose()
    return results


def measure_clients(world: World, questions: Sequence[Question], n: int = 30) -> list[ClientCpu]:
    """CPU per call of each network client (``n`` calls each, after a short warm-up)."""
    return asyncio.run(_measure(world, questions, n))
