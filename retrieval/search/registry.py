"""The search provider registry: a provider name maps to a factory taking ``SearchConfig``.

Adding a backend is one module under ``retrieval/search/`` plus one entry in ``PROVIDERS``.
A comma-separated name (``brave,duckduckgo``) builds a ``FallbackProvider`` that tries each
in order, moving on when one fails or is rate limited.

``local`` (the on-disk index, ``retrieval.index``) is the exception: in a list it is never
a fallback step but always means "search the index too". ``searxng,local`` searches
SearXNG and the index together and interleaves their hits (``MixedProvider``);
``brave,duckduckgo,local`` searches the index together with the brave -> duckduckgo
fallback chain. ``local`` alone searches only the index. ``build_search`` returns the
pieces (web side, index, default provider) so a request can pick one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from retrieval.protocols import SearchProvider

if TYPE_CHECKING:
    from retrieval.index.store import LocalIndex

# Providers are imported by their factories, on demand: reading a provider spec (settings, the
# CLI, a uvicorn supervisor) loads no extractor, index or HTTP client library.


class SearchConfig(msgspec.Struct, frozen=True, repr_omit_defaults=True):
    """What any provider factory may need; each one reads the fields it uses.

    Holds API keys: never log it.
    """

    searxng_url: str | None = None
    timeout_s: float = 10.0
    public_base_url: str = "http://127.0.0.1:8000"
    brave_api_key: str | None = None
    tavily_api_key: str | None = None
    exa_api_key: str | None = None
    # The local index file; None means ``retrieval.index.default_index_path()``.
    index_path: str | None = None


def _bundled(config: SearchConfig) -> SearchProvider:
    from retrieval.search.bundled import BundledCorpus

    return BundledCorpus.load(config.public_base_url)


def _local(config: SearchConfig) -> LocalIndex:
    from retrieval.index.paths import default_index_path
    from retrieval.index.store import LocalIndex

    return LocalIndex(config.index_path or default_index_path())


def _searxng(config: SearchConfig) -> SearchProvider:
    from retrieval.search.searxng import SearxngProvider

    if not config.searxng_url:
        raise ValueError("the searxng search provider needs a SearXNG URL (FOOTNOTE_SEARXNG_URL)")
    return SearxngProvider(config.searxng_url, timeout_s=config.timeout_s)


def _duckduckgo(config: SearchConfig) -> SearchProvider:
    # Imported on demand: the ddgs library is only loaded by deployments that choose it.
    from retrieval.search.duckduckgo import DuckDuckGoProvider

    return DuckDuckGoProvider(timeout_s=config.timeout_s)


def _brave(config: SearchConfig) -> SearchProvider:
    from retrieval.search import brave

    return brave.create(config.brave_api_key, config.timeout_s)


def _tavily(config: SearchConfig) -> SearchProvider:
    from retrieval.search import tavily

    return tavily.create(config.tavily_api_key, config.timeout_s)


def _exa(config: SearchConfig) -> SearchProvider:
    from retrieval.search import exa

    return exa.create(config.exa_api_key, config.timeout_s)


PROVIDERS: dict[str, Callable[[SearchConfig], SearchProvider]] = {
    "bundled": _bundled,
    "local": _local,
    "searxng": _searxng,
    "duckduckgo": _duckduckgo,
    "brave": _brave,
    "tavily": _tavily,
    "exa": _exa,
}


def provider_names(spec: str) -> list[str]:
    """The names in a provider spec (``"searxng"`` or ``"brave, duckduckgo"``), checked.

    ``ValueError`` for an empty spec, an unknown name (listing the known ones) or a repeat.
    """
    names = [part.strip().lower() for part in spec.split(",") if part.strip()]
    if not names:
        raise ValueError("no search provider named")
    for name in names:
        if name not in PROVIDERS:
            known = ", ".join(sorted(PROVIDERS))
            raise ValueError(f"unknown search provider {name!r}; known providers: {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"search provider listed twice in {spec!r}")
    return names


@dataclass(frozen=True)
class SearchSetup:
    """What a provider spec builds: the web side, the local index, and their default mix."""

    default: SearchProvider
    web: SearchProvider | None = None
    local: LocalIndex | None = None


def build_search(spec: str, config: SearchConfig) -> SearchSetup:
    """Build the providers ``spec`` names (see the module doc for what ``local`` means)."""
    from retrieval.index.mixed import MixedProvider
    from retrieval.search.fallback import FallbackProvider

    names = provider_names(spec)
    others = [name for name in names if name != "local"]
    web: SearchProvider | None = None
    if len(others) == 1:
        web = PROVIDERS[others[0]](config)
    elif others:
        # Factories only check their configuration and create idle clients, so one that
        # fails part-way leaves nothing running behind it.
        web = FallbackProvider([PROVIDERS[name](config) for name in others])
    local = _local(config) if "local" in names else None
    if web is not None and local is not None:
        return SearchSetup(default=MixedProvider(local, web), web=web, local=local)
    if local is not None:
        return SearchSetup(default=local, local=local)
    assert web is not None
    return SearchSetup(default=web, web=web)


def build_provider(spec: str, config: SearchConfig) -> SearchProvider:
    """Build the provider ``spec`` names; several names build a fallback chain in order.

    With ``local`` among several names, the index is searched together with the rest.
    """
    return build_search(spec, config).default
