"""The service's collaborators, built once from settings and passed into ``create_app``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.answer.upstream import Upstream
from app.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter
from app.settings import Settings
from retrieval.cache import CacheEntry, MemoryCache, SingleFlight
from retrieval.dispatch import AnyExtractor
from retrieval.extract import TrafilaturaExtractor
from retrieval.index import (
    IndexedExtractor,
    LocalIndex,
    RoutingFetcher,
    default_index_path,
    seed_bundled,
)
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from retrieval.pipeline import PageCache
from retrieval.protocols import Extractor, Fetcher, Ranker, SearchProvider
from retrieval.rank import Bm25Ranker
from retrieval.redis_cache import RedisCache, connect
from retrieval.search.bundled import BundledCorpus
from retrieval.search.registry import SearchConfig, SearchSetup, build_search
from retrieval.workers import ProcessOffload

log = logging.getLogger("footnote.services")


@dataclass
class Services:
    """Everything a request needs besides settings; tests pass fakes at these seams."""

    search: SearchProvider
    fetcher: Fetcher
    extractor: Extractor
    ranker: Ranker
    upstream: Upstream | None = None
    bundled: BundledCorpus | None = None
    offload: ProcessOffload | None = None
    cache: PageCache | None = None
    # Per-client request limits (``FOOTNOTE_RATE_LIMIT``); None = unlimited.
    limiter: RateLimiter | None = None
    # The two sides a request's ``search_mode`` picks from (None: not configured).
    web_search: SearchProvider | None = None
    local_index: LocalIndex | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        """Start what needs starting before the first request (the extraction pool)."""
        if self.offload is not None:
            await self.offload.start()

    async def aclose(self) -> None:
        """Close every client the services opened."""
        for close in self.closers:
            await close()


def _search(settings: Settings) -> tuple[SearchSetup, BundledCorpus | None]:
    """The configured search, and the bundled corpus when its pages are served.

    The offline default (provider ``local``, no ``FOOTNOTE_INDEX_PATH``) seeds the index at
    the default path with the bundled corpus when it holds nothing else (~0.1 s), and
    serves those pages at ``/corpus/...``. If that index cannot be opened (a read-only
    home), the in-memory bundled corpus is searched instead.
    """
    config = SearchConfig(
        searxng_url=settings.searxng_url,
        brave_api_key=settings.brave_api_key,
        tavily_api_key=settings.tavily_api_key,
        exa_api_key=settings.exa_api_key,
        timeout_s=settings.search_timeout_s,
        public_base_url=settings.base_url,
        index_path=settings.index_path,
    )
    if settings.search_provider != "local" or settings.index_path is not None:
        setup = build_search(settings.search_provider, config)
        bundled = setup.default if isinstance(setup.default, BundledCorpus) else None
        return setup, bundled
    path = default_index_path()
    try:
        seeded = seed_bundled(path, settings.base_url)
        setup = build_search("local", config)
    except (OSError, sqlite3.Error) as exc:
        log.warning(
            "local index %s unusable (%s); searching the bundled corpus in memory", path, exc
        )
        bundled = BundledCorpus.load(settings.base_url)
        return SearchSetup(default=bundled), bundled
    demo = seeded.added + seeded.unchanged
    if seeded.added:
        log.info("seeded %s with the bundled corpus in %.2fs", path, seeded.seconds)
    return setup, BundledCorpus.load(settings.base_url) if demo else None


def build_services(settings: Settings) -> Services:
    """Real services for ``settings``: the configured search provider, fetcher and upstream."""
    setup, bundled = _search(settings)
    provider = setup.default
    closers: list[Callable[[], Awaitable[None]]] = []
    fetcher: Fetcher
    # Only the index (or the bundled corpus) to read from: no network at all.
    offline = setup.web is None or setup.web is bundled
    if bundled is not None and provider is bundled:
        # The bundled corpus serves its own pages in-process.
        fetcher = bundled
    elif offline and setup.local is not None:
        fetcher = setup.local
    else:
        http_fetcher = HttpFetcher(
            FetchConfig(
                timeout_s=settings.fetch_timeout_s,
                max_wire_bytes=settings.fetch_max_bytes,
                allow_private=settings.fetch_allow_private,
            )
        )
        closers.append(http_fetcher.aclose)
        # The index's own URLs are read from the index, everything else from the web.
        fetcher = http_fetcher if setup.local is None else RoutingFetcher(setup.local, http_fetcher)
    for part in {id(p): p for p in (provider, setup.web, setup.local) if p is not None}.values():
        aclose = getattr(part, "aclose", None)
        if aclose is not None:
            closers.append(aclose)
    offload = None
    if settings.extract_workers > 0:
        # FOOTNOTE_EXTRACT_WORKERS is the machine's total: each of FOOTNOTE_WORKERS server
        # processes gets its share (at least one), so N workers don't hold N full pools.
        per_process = max(1, settings.extract_workers // max(1, settings.workers))
        offload = ProcessOffload(per_process)
        closers.append(offload.aclose)
    # One Redis client (one connection pool) per process serves the cache and the limits.
    redis = connect(settings.redis_url) if settings.redis_url else None
    if redis is not None:
        closers.append(redis.aclose)
    limiter: RateLimiter | None = None
    if settings.rate_limit > 0:
        limiter = (
            RedisLimiter(redis, settings.rate_limit, settings.rate_limit_period_s)
            if redis is not None
            else MemoryLimiter(settings.rate_limit, settings.rate_limit_period_s)
        )
    cache = None
    if settings.cache_ttl_s > 0 and not offline:
        # Pages already held locally (the index, the bundled corpus) gain nothing from a cache.
        cache = PageCache(
            store=MemoryCache() if redis is None else RedisCache(redis),
            flights=SingleFlight[CacheEntry](),
            ttl_s=settings.cache_ttl_s,
        )
    upstream = None
    if settings.upstream_base_url:
        upstream = Upstream(
            base_url=settings.upstream_base_url,
            api_key=settings.upstream_api_key,
            model=settings.upstream_model,
            timeout_s=settings.upstream_timeout_s,
            max_retries=settings.upstream_max_retries,
            retry_max_wait_s=settings.upstream_retry_max_wait_s,
            fallback="error" if settings.upstream_fallback == "error" else "extractive",
            tier_models=dict(settings.tier_models),
        )
        closers.append(upstream.aclose)
    return Services(
        search=provider,
        fetcher=fetcher,
        extractor=IndexedExtractor(AnyExtractor(TrafilaturaExtractor())),
        # ~7,500 characters of passages keep the whole prompt under ~2,500 tokens (4 chars a
        # token, plus source headers and instructions).
        ranker=Bm25Ranker(max_chars=7500, per_source=5),
        upstream=upstream,
        bundled=bundled,
        offload=offload,
        cache=cache,
        limiter=limiter,
        web_search=setup.web,
        local_index=setup.local,
        closers=closers,
    )
