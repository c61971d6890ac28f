"""The search provider registry: a provider name maps to a factory taking ``SearchConfig``.

Adding a backend is one module under ``retrieval/search/`` plus one entry in ``PROVIDERS``.
A comma-separated name (``brave,duckduckgo``) builds a ``FallbackProvider`` that tries each
in order, moving on when one fails or is rate limited.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from retrieval.protocols import SearchProvider
from retrieval.search import brave, exa, tavily
from retrieval.search.bundled import BundledCorpus
from retrieval.search.fallback import FallbackProvider
from retrieval.search.searxng import SearxngProvider


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


def _bundled(config: SearchConfig) -> SearchProvider:
    return BundledCorpus.load(config.public_base_url)


def _searxng(config: SearchConfig) -> SearchProvider:
    if not config.searxng_url:
        raise ValueError("the searxng search provider needs a SearXNG URL (FOOTNOTE_SEARXNG_URL)")
    return SearxngProvider(config.searxng_url, timeout_s=config.timeout_s)


def _duckduckgo(config: SearchConfig) -> SearchProvider:
    # Imported on demand: the ddgs library is only loaded by deployments that choose it.
    from retrieval.search.duckduckgo import DuckDuckGoProvider

    return DuckDuckGoProvider(timeout_s=config.timeout_s)


def _brave(config: SearchConfig) -> SearchProvider:
    return brave.create(config.brave_api_key, config.timeout_s)


def _tavily(config: SearchConfig) -> SearchProvider:
    return tavily.create(config.tavily_api_key, config.timeout_s)


def _exa(config: SearchConfig) -> SearchProvider:
    return exa.create(config.exa_api_key, config.timeout_s)


PROVIDERS: dict[str, Callable[[SearchConfig], SearchProvider]] = {
    "bundled": _bundled,
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


def build_provider(spec: str, config: SearchConfig) -> SearchProvider:
    """Build the provider ``spec`` names; several names build a fallback chain in order."""
    names = provider_names(spec)
    if len(names) == 1:
        return PROVIDERS[names[0]](config)
    # Factories only check their configuration and create idle clients, so one that fails
    # part-way leaves nothing running behind it.
    return FallbackProvider([PROVIDERS[name](config) for name in names])
