"""The service's collaborators, built once from settings and passed into ``create_app``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.answer.upstream import Upstream
from app.settings import Settings
from retrieval.cache import CacheEntry, MemoryCache, SingleFlight
from retrieval.dispatch import AnyExtractor
from retrieval.extract import TrafilaturaExtractor
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from retrieval.pipeline import PageCache
from retrieval.protocols import Extractor, Fetcher, Ranker, SearchProvider
from retrieval.rank import Bm25Ranker
from retrieval.search.bundled import BundledCorpus
from retrieval.search.registry import SearchConfig, build_provider
from retrieval.workers import ProcessOffload


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
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        """Start what needs starting before the first request (the extraction pool)."""
        if self.offload is not None:
            await self.offload.start()

    async def aclose(self) -> None:
        """Close every client the services opened."""
        for close in self.closers:
            await close()


def build_services(settings: Settings) -> Services:
    """Real services for ``settings``: the configured search provider, fetcher and upstream."""
    provider = build_provider(
        settings.search_provider,
        SearchConfig(
            searxng_url=settings.searxng_url,
            brave_api_key=settings.brave_api_key,
            tavily_api_key=settings.tavily_api_key,
            exa_api_key=settings.exa_api_key,
            timeout_s=settings.search_timeout_s,
            public_base_url=settings.base_url,
        ),
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    fetcher: Fetcher
    bundled = provider if isinstance(provider, BundledCorpus) else None
    if bundled is not None:
        # The bundled corpus serves its own pages in-process: no network at all.
        fetcher = bundled
    else:
        http_fetcher = HttpFetcher(
            FetchConfig(
                timeout_s=settings.fetch_timeout_s,
                max_wire_bytes=settings.fetch_max_bytes,
                allow_private=settings.fetch_allow_private,
            )
        )
        closers.append(http_fetcher.aclose)
        fetcher = http_fetcher
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        closers.append(aclose)
    offload = None
    if settings.extract_workers > 0:
        offload = ProcessOffload(settings.extract_workers)
        closers.append(offload.aclose)
    cache = None
    if settings.cache_ttl_s > 0 and bundled is None:
        # Pages already held in memory (the bundled corpus) gain nothing from a cache.
        cache = PageCache(
            store=MemoryCache(),
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
        )
        closers.append(upstream.aclose)
    return Services(
        search=provider,
        fetcher=fetcher,
        extractor=AnyExtractor(TrafilaturaExtractor()),
        # ~7,500 characters of passages keep the whole prompt under ~2,500 tokens (4 chars a
        # token, plus source headers and instructions).
        ranker=Bm25Ranker(max_chars=7500, per_source=5),
        upstream=upstream,
        bundled=bundled,
        offload=offload,
        cache=cache,
        closers=closers,
    )
