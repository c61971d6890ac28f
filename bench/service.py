"""Footnote in a child process: the production app for the tiers, and a sweep app.

Both apps come from ``create_app`` with the service's default settings except what the
simulated world needs (SearXNG and upstream URLs, ``fetch_allow_private=127.0.0.0/8``), and are
served by uvicorn (``ServerThread``, lifespan on) on 127.0.0.1:

* ``tiers``: exactly what ``build_services`` builds, answering the models ``speed``, ``lite``,
  ``base`` and ``core``;
* ``sweep``: the same services, except the search provider asks SearXNG for as many result
  pages as the request needs (``PagedSearxng``; the production provider caps the pages it
  asks for - 3, i.e. 30 results, when this was written - and 40 pages need 4), and extra
  models ``sweep-N`` that read ``N`` pages in one round (no follow-up searches) with the
  base tier's other budgets. They are registered in ``app.tiers.TIERS`` of this child process only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import anyio
import httpx
import msgspec

from app.settings import Settings
from app.tiers import TIERS, Tier
from bench.child import Child, serve_commands
from retrieval.errors import SearchUnavailable
from retrieval.search.searxng import parse_results
from retrieval.types import SearchHit

SWEEP_PREFIX = "sweep-"
RESULTS_PER_PAGE = 10


def sweep_model(pages: int) -> str:
    """The model name of the sweep point that reads ``pages`` pages."""
    return f"{SWEEP_PREFIX}{pages}"


def sweep_tier(pages: int) -> Tier:
    """A tier reading ``pages`` pages in one round, with the base tier's other budgets."""
    # A copy of base, so budgets the tiers gain later keep base's values; one round only, so
    # that exactly ``pages`` pages are read (follow-up rounds would add more, later).
    changes: dict[str, Any] = {"rounds": 1} if "rounds" in _tier_fields() else {}
    return msgspec.structs.replace(
        TIERS["base"],
        name=sweep_model(pages),
        description=f"Benchmark sweep: reads {pages} pages.",
        max_hits=pages,
        max_pages=pages,
        **changes,
    )


def _tier_fields() -> set[str]:
    return {f.name for f in msgspec.structs.fields(Tier)}


def bench_settings(
    searxng_url: str, upstream_url: str | None, *, page_cache: bool = False
) -> Settings:
    """Default settings, pointed at the simulated world; the page cache off unless asked.

    Every benchmark asks the same questions several times (recall, then latency, then the
    sweep); with the service's page cache on, later runs would read pages from memory and
    measure no fetching at all.
    """
    changes: dict[str, Any] = {}
    if not page_cache and "cache_ttl_s" in {f.name for f in msgspec.structs.fields(Settings)}:
        changes["cache_ttl_s"] = 0.0
    return Settings(
        search_provider="searxng",
        searxng_url=searxng_url,
        upstream_base_url=upstream_url,
        upstream_api_key="bench",
        upstream_model="fake-model",
        fetch_allow_private=("127.0.0.0/8",),
        **changes,
    )


class PagedSearxng:
    """``SearchProvider`` that fetches ``ceil(limit / 10)`` SearXNG result pages at once."""

    name = "searxng-paged"

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        """Query the SearXNG instance at ``base_url``."""
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Up to ``limit`` hits, asking pages 1..n concurrently and keeping their order."""
        if limit < 1 or not query.strip():
            return []
        bodies: list[bytes] = [b""] * math.ceil(limit / RESULTS_PER_PAGE)

        async def get(index: int) -> None:
            params = {"q": query, "format": "json", "pageno": str(index + 1)}
            with anyio.fail_after(self.timeout_s):
                response = await self._client.get(f"{self.base_url}/search", params=params)
            if response.status_code != 200:
                raise SearchUnavailable(f"SearXNG answered HTTP {response.status_code}")
            bodies[index] = response.content

        async with anyio.create_task_group() as tg:
            for index in range(len(bodies)):
                tg.start_soon(get, index)
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for body in bodies:
            for hit in parse_results(body, limit=RESULTS_PER_PAGE):
                if hit.url not in seen:
                    seen.add(hit.url)
                    hits.append(hit)
        return hits[:limit]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


@dataclass(frozen=True)
class ServiceSpec:
    """What the Footnote child needs."""

    searxng_url: str
    upstream_url: str
    sweep_pages: tuple[int, ...]
    page_cache: bool = False


def _quiet_logs() -> None:
    for name in ("", "httpx", "httpx2", "httpcore", "footnote", "litestar"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _service_main(conn: Connection, spec: ServiceSpec) -> None:
    """The child: serve both apps until told to stop."""
    from app.server import create_app
    from tests.fakes.server import ServerThread

    settings = bench_settings(spec.searxng_url, spec.upstream_url, page_cache=spec.page_cache)
    for pages in spec.sweep_pages:
        TIERS[sweep_model(pages)] = sweep_tier(pages)
    # Both apps build (and at shutdown close) their own services, extraction pool included.
    tiers_app: Any = create_app(settings)  # Litestar's ASGI signature is narrower than ASGIApp
    sweep_app: Any = create_app(settings)
    servers = {
        "tiers": ServerThread(tiers_app, "127.0.0.1", lifespan=True, name="footnote-tiers"),
        "sweep": ServerThread(sweep_app, "127.0.0.1", lifespan=True, name="footnote-sweep"),
    }
    # Litestar's default logging config sends INFO (every HTTP request of httpx) to stderr;
    # the benchmark output wants warnings and errors only (set again once it has run).
    _quiet_logs()
    for server in servers.values():
        server.start(timeout=30)
    _quiet_logs()
    # The sweep app's search asks as many SearXNG pages as a sweep point needs; swapped in
    # after start-up (before any request), so the app still owns and closes everything.
    sweep_services = sweep_app.state.services
    paged = PagedSearxng(spec.searxng_url, timeout_s=settings.search_timeout_s)
    sweep_services.search = paged
    sweep_services.closers.append(paged.aclose)

    def handle(command: str, args: tuple[Any, ...]) -> Any:
        raise ValueError(f"unknown command {command!r}")

    try:
        ready = {
            "urls": {name: server.base_url for name, server in servers.items()},
            "settings": msgspec.to_builtins(settings),
        }
        serve_commands(conn, ready, handle)
    finally:
        for server in servers.values():
            server.stop()


class Service:
    """Handle on the Footnote child process."""

    def __init__(self, spec: ServiceSpec) -> None:
        """Prepare the child; ``start()`` runs it."""
        self.spec = spec
        self._child = Child(_service_main, spec, "bench-footnote")
        self.tiers_url = ""
        self.sweep_url = ""
        self.settings: dict[str, Any] = {}

    def start(self) -> Service:
        """Start both apps."""
        ready = cast(dict[str, Any], self._child.start())
        self.tiers_url = str(ready["urls"]["tiers"])
        self.sweep_url = str(ready["urls"]["sweep"])
        self.settings = dict(ready["settings"])
        return self

    @property
    def exitcode(self) -> int | None:
        """The child's exit code, None while it runs."""
        return self._child.exitcode

    def cpu(self) -> float:
        """CPU seconds the Footnote process has used so far (all threads)."""
        return float(self._child.call("cpu"))

    def stop(self) -> None:
        """Stop both apps and the child."""
        self._child.stop()
