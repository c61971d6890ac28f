"""The simulated world in a child process: web pages, SearXNG and the upstream LLM, with latency.

``LatencyModel`` is the injected latency (defaults from the benchmark issue):

* search: a fixed ``search_s`` (0.2 s) per SearXNG query, before the answer;
* pages: lognormal per URL with median ``page_median_s`` (0.15 s) and 95th percentile
  ``page_p95_s`` (0.6 s), i.e. ``sigma = ln(p95 / median) / 1.645 = 0.843``; a
  ``hang_fraction`` of URLs (1%) instead waits ``hang_s`` (60 s, far past any deadline).
  A page always gets the same delay (seeded hash of its host and path), so runs compare;
* upstream: a fixed ``upstream_s`` (0.3 s) before the fake LLM answers, standing in for a
  model's time to write a short non-streamed answer. The fake's own work (parsing the prompt,
  picking sentences) comes on top and counts as upstream time.

``World`` starts the child and wraps its commands: ``set_latency(on)``, ``set_gzip(on)``,
``hang(urls)`` (make given pages hang, for the hang probe), ``drain()`` (page requests and
upstream prompts seen since the last drain) and ``cpu()``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from bench.child import Child, serve_commands
from tests.fakes.searxng import FakeSearxng
from tests.fakes.server import Receive, Scope, Send
from tests.fakes.simweb import SimulatedWeb

Z_95 = statistics.NormalDist().inv_cdf(0.95)


@dataclass(frozen=True)
class LatencyModel:
    """Injected network latency of the simulated world (see the module docstring)."""

    search_s: float = 0.2
    page_median_s: float = 0.15
    page_p95_s: float = 0.6
    hang_fraction: float = 0.01
    hang_s: float = 60.0
    upstream_s: float = 0.3
    seed: int = 0

    @property
    def sigma(self) -> float:
        """The lognormal sigma giving ``page_p95_s`` at the 95th percentile."""
        return math.log(self.page_p95_s / self.page_median_s) / Z_95

    def describe(self) -> str:
        """One line for the report header."""
        return (
            f"search {self.search_s * 1000:.0f} ms; pages lognormal median "
            f"{self.page_median_s * 1000:.0f} ms, p95 {self.page_p95_s * 1000:.0f} ms "
            f"(sigma {self.sigma:.3f}), {self.hang_fraction:.1%} hang {self.hang_s:.0f} s; "
            f"upstream {self.upstream_s * 1000:.0f} ms + the fake's own work"
        )


@dataclass(frozen=True)
class WorldSpec:
    """What the world child needs: the latency model and where the corpus is."""

    latency: LatencyModel
    corpus_dir: str | None = None


@dataclass(frozen=True)
class Drained:
    """What the world saw since the last drain."""

    pages: list[tuple[str, float, float, float]]
    """Page requests ``(url, injected delay s, start, end)`` (``time.monotonic()``); the end
    is when the response went out or the client gave up."""
    search_times: list[float]
    """Arrival times (``time.monotonic()``) of the search queries."""
    prompts: list[str]
    """The last user message of every upstream chat completion request."""


class _TimedWeb(SimulatedWeb):
    """``SimulatedWeb`` that notes, per page request, its delay and when it began and ended.

    The end is when the response was sent or the client hung up (an abandoned fetch), so
    ``end - start`` is how long the client actually waited for that page.
    """

    def __init__(self, corpus: Path | None, *, latency: Callable[[str], float]) -> None:
        super().__init__(corpus, latency=latency)
        self.log: list[tuple[str, float, float, float]] = []
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        host, port = scope["server"][0], scope["server"][1]
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        url = f"http://{host}:{port}{raw_path}" + (f"?{query}" if query else "")
        latency = self.latency
        delay = latency(url) if latency else 0.0
        start = time.monotonic()
        self.in_flight += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.log.append((url, delay, start, time.monotonic()))


class _TimedSearxng(FakeSearxng):
    """``FakeSearxng`` that also notes when each ``/search`` request arrived."""

    def __init__(self, web: SimulatedWeb, *, latency_s: float) -> None:
        super().__init__(web, latency_s=latency_s)
        self.times: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/search":
            self.times.append(time.monotonic())
        await super().__call__(scope, receive, send)


def _world_main(conn: Connection, spec: WorldSpec) -> None:
    """The child: start the three fakes, answer commands, stop them."""
    from tests.fakes.simweb import lognormal_latency
    from tests.fakes.upstream import FakeUpstream, message_text

    model = spec.latency
    drawn = lognormal_latency(
        model.page_median_s,
        model.sigma,
        hang_fraction=model.hang_fraction,
        hang_s=model.hang_s,
        seed=model.seed,
    )
    hang: set[str] = set()

    def page_latency(url: str) -> float:
        # Keyed on host + path, not the (random) port, so every run hangs the same pages.
        parts = urlsplit(url)
        key = f"{parts.hostname}{parts.path}"
        return model.hang_s if key in hang else drawn(key)

    corpus = Path(spec.corpus_dir) if spec.corpus_dir else None
    web = _TimedWeb(corpus, latency=page_latency)
    search = _TimedSearxng(web, latency_s=model.search_s)
    upstream = FakeUpstream()
    upstream.delay_s = model.upstream_s

    def set_latency(on: bool) -> None:
        web.latency = page_latency if on else None
        search.latency_s = model.search_s if on else 0.0
        upstream.delay_s = model.upstream_s if on else 0.0

    def drain() -> Drained:
        # Let page handlers still finishing (a fetch abandoned a moment ago) log themselves.
        deadline = time.monotonic() + 1.0
        while web.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        # Servers append from their threads; take a prefix and delete exactly that much.
        n_pages = len(web.log)
        pages = web.log[:n_pages]
        del web.log[:n_pages]
        del web.requests[:]
        n_search = len(search.times)
        search_times = search.times[:n_search]
        del search.times[:n_search]
        n_up = len(upstream.requests)
        recorded = upstream.requests[:n_up]
        del upstream.requests[:n_up]
        prompts: list[str] = []
        for item in recorded:
            body = item["body"] or {}
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            if item["path"] == "/v1/chat/completions" and users:
                prompts.append(message_text(users[-1].get("content")))
        return Drained(pages=pages, search_times=search_times, prompts=prompts)

    def handle(command: str, args: tuple[Any, ...]) -> Any:
        if command == "latency":
            set_latency(bool(args[0]))
            return None
        if command == "drain":
            return drain()
        if command == "hang":
            hang.clear()
            hang.update(f"{urlsplit(u).hostname}{urlsplit(u).path}" for u in args[0])
            return None
        if command == "gzip":
            web.gzip = bool(args[0])
            return None
        if command == "stream_delay":
            upstream.inter_chunk_delay_s = float(args[0])
            return None
        raise ValueError(f"unknown command {command!r}")

    web.start()
    search.start()
    upstream.start()
    try:
        ready = {
            "searxng": search.base_url,
            "upstream": upstream.base_url,
            "web_port": web.port,
            "page_urls": [web.url_for(p["site"], p["path"]) for p in web.pages],
        }
        serve_commands(conn, ready, handle)
    finally:
        for fake in (upstream, search, web):
            fake.stop()


class World:
    """Handle on the world child process."""

    def __init__(self, spec: WorldSpec) -> None:
        """Prepare the child; ``start()`` runs it."""
        self.spec = spec
        self._child = Child(_world_main, spec, "bench-world")
        self.searxng_url = ""
        self.upstream_url = ""
        self.page_urls: list[str] = []

    def start(self) -> World:
        """Start the fakes (about 2 s: corpus load and search index)."""
        ready = cast(dict[str, Any], self._child.start())
        self.searxng_url = str(ready["searxng"])
        self.upstream_url = str(ready["upstream"])
        self.page_urls = list(ready["page_urls"])
        return self

    def set_latency(self, on: bool) -> None:
        """Turn the injected latency on or off (off: everything answers at once)."""
        self._child.call("latency", on)

    def set_gzip(self, on: bool) -> None:
        """Whether the simulated web gzips pages for clients that accept it (default on)."""
        self._child.call("gzip", on)

    def hang(self, urls: list[str]) -> None:
        """Make exactly these page URLs hang (on top of the model's own); ``[]`` clears."""
        self._child.call("hang", urls)

    def set_stream_delay(self, seconds: float) -> None:
        """Pause between the fake upstream's stream chunks (0: as fast as it can)."""
        self._child.call("stream_delay", seconds)

    def drain(self) -> Drained:
        """Page requests and upstream prompts seen since the last drain."""
        return cast(Drained, self._child.call("drain"))

    @property
    def exitcode(self) -> int | None:
        """The child's exit code, None while it runs."""
        return self._child.exitcode

    def cpu(self) -> float:
        """CPU seconds the world process has used so far."""
        return float(self._child.call("cpu"))

    def stop(self) -> None:
        """Stop the fakes and the child."""
        self._child.stop()
