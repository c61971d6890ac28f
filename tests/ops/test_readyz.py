"""``GET /readyz`` checks the search provider and the upstream; ``/healthz`` stays cheap."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from app.api.ops import check_all
from app.server import create_app
from app.services import Services
from retrieval.errors import SearchUnavailable
from retrieval.search.fallback import FallbackProvider
from retrieval.types import SearchHit
from tests.fakes.footnote_server import StartFootnote, _settings
from tests.fakes.searxng import FakeSearxng
from tests.fakes.server import ServerThread
from tests.fakes.upstream import FakeUpstream


def get(base: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        return c.get(path)


def assert_not_ready(resp: httpx.Response, failed: str) -> dict[str, Any]:
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "not_ready"
    assert body["error"] == {
        "message": f"Not ready: {failed} check failed.",
        "type": "service_unavailable_error",
        "param": None,
        "code": "not_ready",
    }
    assert "x-should-retry" not in resp.headers  # worth retrying: it may come back
    assert resp.headers["x-request-id"]
    checks: dict[str, Any] = body["checks"]
    assert checks[failed]["status"] == "fail"
    return checks


@pytest.fixture(scope="module")
def base(footnote_factory: StartFootnote) -> str:
    """A Footnote whose readiness checks give up after 0.5 s."""
    return footnote_factory(extract_workers=0, ready_timeout_s=0.5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_ready_when_search_and_upstream_answer(
    base: str, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    resp = get(base, "/readyz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ready"
    assert body["checks"]["search"]["status"] == "ok"
    assert body["checks"]["search"]["provider"] == "searxng"
    assert body["checks"]["upstream"]["status"] == "ok"
    # Cheap probes: SearXNG's /healthz (no search run) and the upstream's model list.
    assert searxng.queries == []
    assert [(r["method"], r["path"]) for r in upstream.requests] == [("GET", "/v1/models")]


def test_upstream_failure_makes_it_unready(base: str, upstream: FakeUpstream) -> None:
    upstream.fail_with = 503
    checks = assert_not_ready(get(base, "/readyz"), "upstream")
    assert "503" in checks["upstream"]["error"]
    assert checks["search"]["status"] == "ok"
    assert get(base, "/healthz").status_code == 200  # liveness does not depend on it


def test_slow_upstream_times_out(base: str, upstream: FakeUpstream) -> None:
    upstream.delay_s = 5.0
    t0 = time.perf_counter()
    resp = get(base, "/readyz")
    elapsed = time.perf_counter() - t0
    checks = assert_not_ready(resp, "upstream")
    assert elapsed < 3.0
    assert "0.5" in checks["upstream"]["error"]


@contextmanager
def footnote_searching(searxng_url: str, upstream: FakeUpstream) -> Iterator[str]:
    """A Footnote whose SearXNG is ``searxng_url``; stopped on exit."""
    settings = _settings(searxng_url, upstream.base_url, extract_workers=0, ready_timeout_s=0.5)
    app: Any = create_app(settings)
    with ServerThread(app, "127.0.0.1", lifespan=True, name="footnote") as server:
        yield server.base_url


def test_unreachable_or_silent_search(upstream: FakeUpstream, silent_port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, never listening: connections are refused
        with footnote_searching(f"http://127.0.0.1:{closed}", upstream) as refused:
            checks = assert_not_ready(get(refused, "/readyz"), "search")
    assert checks["search"]["provider"] == "searxng"
    assert "unreachable" in checks["search"]["error"]
    assert "127.0.0.1" not in checks["search"]["error"]  # no internal addresses in the body
    with footnote_searching(f"http://127.0.0.1:{silent_port}", upstream) as silent:
        t0 = time.perf_counter()
        assert_not_ready(get(silent, "/readyz"), "search")
        assert time.perf_counter() - t0 < 3.0
        assert get(silent, "/healthz").status_code == 200


def test_no_upstream_is_ready_with_extractive_answers(footnote_factory: StartFootnote) -> None:
    resp = get(footnote_factory(with_upstream=False, extract_workers=0), "/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"]["upstream"] == {"status": "disabled"}


class Provider:
    """A search provider whose readiness probe answers as told."""

    def __init__(self, name: str, ok: bool) -> None:
        self.name = name
        self.ok = ok
        self.probed = 0

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        return []

    async def ready(self) -> None:
        self.probed += 1
        if not self.ok:
            raise SearchUnavailable(f"{self.name} is down")


class Unprobed:
    """A metered search API: no readiness probe."""

    name = "metered"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        return []


@pytest.mark.anyio
async def test_fallback_chain_is_ready_when_any_provider_is() -> None:
    down, up = Provider("a", ok=False), Provider("b", ok=True)
    await FallbackProvider([down, up]).ready()
    assert (down.probed, up.probed) == (1, 1)
    await FallbackProvider([Unprobed(), down]).ready()  # unprobed counts as ready
    with pytest.raises(SearchUnavailable, match="no search provider is ready: a: a is down"):
        await FallbackProvider([down, Provider("c", ok=False)]).ready()


@pytest.mark.anyio
async def test_provider_without_probe_is_unchecked() -> None:
    services: Any = Services(search=Unprobed(), fetcher=None, extractor=None, ranker=None)  # type: ignore[arg-type]
    checks = await check_all(services, 0.5)
    assert checks == {
        "search": {"status": "unchecked", "provider": "metered"},
        "upstream": {"status": "disabled"},
    }
