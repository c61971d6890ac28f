"""Brave, Tavily and Exa providers against loopback fakes; DuckDuckGo with a fake ddgs client.

The key-based providers talk real HTTP to ``tests.fakes.search_apis`` (success, request
shape, 429/401/403/5xx, a hanging and a dripping server, broken and oversized bodies); the
pure parsing helpers are tested directly. ``DuckDuckGoProvider`` never touches the network:
its ``client_factory`` seam gets a fake that returns rows or raises ddgs's exceptions.
"""

from __future__ import annotations

import email.utils
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx
import pytest
from ddgs import DDGS
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.protocols import SearchProvider
from retrieval.search import brave, duckduckgo, exa, tavily
from retrieval.search._http import (
    MAX_RETRY_AFTER_S,
    ApiSearchProvider,
    clean_text,
    parse_retry_after,
)
from retrieval.search.brave import BraveProvider, rate_limit_reset
from retrieval.search.duckduckgo import DuckDuckGoProvider
from retrieval.search.exa import ExaProvider
from retrieval.search.tavily import TavilyProvider
from tests.fakes.search_apis import API_KEY, FakeSearchApis


class ProviderClass(Protocol):
    """The constructor the three key-based providers share."""

    def __call__(
        self,
        api_key: str,
        *,
        base_url: str = ...,
        timeout_s: float = ...,
        client: httpx.AsyncClient | None = ...,
    ) -> ApiSearchProvider: ...


PROVIDERS: dict[str, ProviderClass] = {
    "brave": BraveProvider,
    "tavily": TavilyProvider,
    "exa": ExaProvider,
}
APIS = sorted(PROVIDERS)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def served() -> Iterator[FakeSearchApis]:
    """One fake for the whole module (start-up is paid once)."""
    with FakeSearchApis() as fake:
        yield fake


@pytest.fixture
def fake(served: FakeSearchApis) -> Iterator[FakeSearchApis]:
    """The module's fake, with every knob back at its default for each test."""
    served.reset()
    yield served
    served.reset()


@asynccontextmanager
async def opened(
    api: str, fake: FakeSearchApis, *, key: str = API_KEY, timeout_s: float = 5.0
) -> AsyncIterator[ApiSearchProvider]:
    """A provider of ``api`` pointed at ``fake``, closed on exit."""
    provider = PROVIDERS[api](key, base_url=fake.base_url_for(api), timeout_s=timeout_s)
    try:
        yield provider
    finally:
        await provider.aclose()


# --- success and request shape ------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_success_maps_fields(api: str, fake: FakeSearchApis) -> None:
    async with opened(api, fake) as provider:
        hits = await provider.search("Eiffel tower", limit=10)
    assert [h.url for h in hits] == [r["url"] for r in fake.results]
    assert hits[0].title == "Eiffel Tower - history"
    assert hits[0].snippet == "The Eiffel Tower was completed in 1889 for the World's Fair."
    assert hits[1].snippet == "Paris is home to the Eiffel Tower & the Louvre."
    assert [h.published for h in hits] == ["2023-09-20", None, "2021-02-03"]
    assert {h.engine for h in hits} == {api}
    assert all("<" not in h.snippet for h in hits)


@pytest.mark.parametrize("api", APIS)
async def test_request_shape_and_auth(api: str, fake: FakeSearchApis) -> None:
    async with opened(api, fake) as provider:
        hits = await provider.search("  what is  lattice  ", limit=2)
    assert len(hits) == 2
    [request] = fake.requests
    headers = request["headers"]
    assert headers["accept"] == "application/json"
    if api == "brave":
        assert request["method"] == "GET"
        assert request["params"] == {"q": "what is  lattice", "count": "2"}
        assert headers["x-subscription-token"] == API_KEY
    elif api == "tavily":
        assert request["method"] == "POST"
        assert request["json"] == {
            "query": "what is  lattice",
            "max_results": 2,
            "search_depth": "basic",
        }
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert headers["content-type"] == "application/json"
    else:
        assert request["json"] == {"query": "what is  lattice", "numResults": 2, "type": "auto"}
        assert headers["x-api-key"] == API_KEY


@pytest.mark.parametrize(("api", "asked"), [("brave", "20"), ("tavily", 20), ("exa", 100)])
async def test_limit_is_capped_at_the_api_maximum(
    api: str, asked: object, fake: FakeSearchApis
) -> None:
    async with opened(api, fake) as provider:
        await provider.search("tower", limit=500)
    request = fake.requests[0]
    sent = request["params"].get("count") if api == "brave" else None
    if api == "tavily":
        sent = request["json"]["max_results"]
    elif api == "exa":
        sent = request["json"]["numResults"]
    assert sent == asked


@pytest.mark.parametrize("api", APIS)
async def test_blank_query_or_zero_limit_sends_nothing(api: str, fake: FakeSearchApis) -> None:
    async with opened(api, fake) as provider:
        assert await provider.search("   ", limit=5) == []
        assert await provider.search("tower", limit=0) == []
    assert fake.requests == []


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_429_with_retry_after_is_rate_limited(api: str, fake: FakeSearchApis) -> None:
    fake.fail_with, fake.fail_headers = 429, [("retry-after", "7")]
    async with opened(api, fake) as provider:
        with pytest.raises(SearchRateLimited, match=r"HTTP 429; retry after 7s") as info:
            await provider.search("tower", limit=3)
    assert info.value.retry_after == 7.0


async def test_429_retry_after_http_date(fake: FakeSearchApis) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    fake.fail_with, fake.fail_headers = 429, [("retry-after", when)]
    async with opened("tavily", fake) as provider:
        with pytest.raises(SearchRateLimited) as info:
            await provider.search("tower", limit=3)
    assert info.value.retry_after is not None
    assert 110 <= info.value.retry_after <= 121


async def test_429_without_retry_after(fake: FakeSearchApis) -> None:
    fake.fail_with = 429
    async with opened("exa", fake) as provider:
        with pytest.raises(SearchRateLimited, match=r"\(HTTP 429\)") as info:
            await provider.search("tower", limit=3)
    assert info.value.retry_after is None


async def test_brave_429_uses_its_rate_limit_headers(fake: FakeSearchApis) -> None:
    fake.fail_with = 429
    fake.fail_headers = [("x-ratelimit-remaining", "0, 1000"), ("x-ratelimit-reset", "1, 1419704")]
    async with opened("brave", fake) as provider:
        with pytest.raises(SearchRateLimited) as info:
            await provider.search("tower", limit=3)
    assert info.value.retry_after == 1.0


def test_brave_rate_limit_reset_picks_the_exhausted_window() -> None:
    monthly = {"x-ratelimit-remaining": "1, 0", "x-ratelimit-reset": "1, 86400"}
    assert rate_limit_reset(monthly) == MAX_RETRY_AFTER_S
    assert rate_limit_reset({"x-ratelimit-reset": "3, 50"}) == 3.0
    assert rate_limit_reset({"x-ratelimit-reset": "soon"}) is None
    assert rate_limit_reset({}) is None


@pytest.mark.parametrize("api", APIS)
async def test_wrong_key_is_rejected_and_never_echoed(api: str, fake: FakeSearchApis) -> None:
    async with opened(api, fake, key="wrong-secret") as provider:
        with pytest.raises(SearchUnavailable, match=r"rejected the API key \(HTTP 401\)") as info:
            await provider.search("tower", limit=3)
    assert not isinstance(info.value, SearchRateLimited)
    assert "wrong-secret" not in str(info.value)
    assert "wrong-secret" not in repr(provider)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, r"Brave Search rejected the API key \(HTTP 403\)"),
        (500, r"Brave Search answered HTTP 500"),
        (503, r"Brave Search answered HTTP 503"),
        (302, r"Brave Search answered HTTP 302"),
    ],
)
async def test_error_statuses(status: int, message: str, fake: FakeSearchApis) -> None:
    fake.fail_with = status
    async with opened("brave", fake) as provider:
        with pytest.raises(SearchUnavailable, match=message):
            await provider.search("tower", limit=3)


@pytest.mark.parametrize(
    ("api", "status", "message"),
    [
        ("tavily", 432, r"plan's usage limit is exceeded \(HTTP 432\)"),
        ("tavily", 433, r"pay-as-you-go limit is exceeded \(HTTP 433\)"),
        ("exa", 402, r"run out of credits \(HTTP 402\)"),
    ],
)
async def test_provider_specific_statuses(
    api: str, status: int, message: str, fake: FakeSearchApis
) -> None:
    fake.fail_with = status
    async with opened(api, fake) as provider:
        with pytest.raises(SearchUnavailable, match=message):
            await provider.search("tower", limit=3)


@pytest.mark.parametrize("api", APIS)
async def test_hanging_server_times_out(api: str, fake: FakeSearchApis) -> None:
    fake.latency_s = 30.0
    async with opened(api, fake, timeout_s=0.5) as provider:
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match=r"did not answer within 0.5s"):
            await provider.search("tower", limit=3)
    assert time.monotonic() - started < 1.5


async def test_dripping_body_hits_the_overall_deadline(fake: FakeSearchApis) -> None:
    # Each byte arrives well inside httpx's per-read timeout; only the overall deadline fires.
    fake.drip_s = 0.05
    async with opened("exa", fake, timeout_s=0.6) as provider:
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match=r"did not answer within 0.6s"):
            await provider.search("tower", limit=3)
    assert time.monotonic() - started < 1.6


@pytest.mark.parametrize("api", APIS)
async def test_invalid_json(api: str, fake: FakeSearchApis) -> None:
    fake.raw_body = b'{"results": [ oops'
    async with opened(api, fake) as provider:
        with pytest.raises(SearchUnavailable, match="malformed JSON"):
            await provider.search("tower", limit=3)


@pytest.mark.parametrize("api", APIS)
async def test_json_of_the_wrong_shape(api: str, fake: FakeSearchApis) -> None:
    fake.payload = {"web": {"results": "nope"}} if api == "brave" else ["not", "an", "object"]
    async with opened(api, fake) as provider:
        with pytest.raises(SearchUnavailable, match=r"without a .*results list"):
            await provider.search("tower", limit=3)


async def test_oversized_body(fake: FakeSearchApis) -> None:
    fake.raw_body = b" " * 5_000_001
    async with opened("tavily", fake) as provider:
        with pytest.raises(SearchUnavailable, match="oversized body"):
            await provider.search("tower", limit=3)


async def test_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TavilyProvider(API_KEY, base_url=f"http://127.0.0.1:{port}", timeout_s=2.0)
    try:
        with pytest.raises(SearchUnavailable, match=r"Tavily is unreachable \(ConnectError\)"):
            await provider.search("tower", limit=3)
    finally:
        await provider.aclose()


# --- parsing ------------------------------------------------------------------------------


def test_parsers_drop_non_http_and_repeated_urls() -> None:
    rows: list[Any] = [
        {"url": "https://a.example/1", "title": "One"},
        {"url": "javascript:alert(1)", "title": "Bad"},
        {"url": "ftp://files.example/x", "title": "Ftp"},
        {"url": "https://a.example/1", "title": "Again"},
        "not an object",
        {"title": "No URL"},
        {"url": "http://[::1", "title": "Broken"},
        {"url": " http://b.example/2 ", "title": ""},
    ]
    exa_hits = exa.parse_results({"results": rows}, limit=10)
    tavily_hits = tavily.parse_results({"results": rows}, limit=10)
    brave_hits = brave.parse_results({"web": {"results": rows}}, limit=10)
    for hits in (exa_hits, tavily_hits, brave_hits):
        assert [h.url for h in hits] == ["https://a.example/1", "http://b.example/2"]
        assert hits[1].title == "http://b.example/2"
    assert len(exa.parse_results({"results": rows}, limit=1)) == 1


def test_brave_without_web_section_is_an_empty_answer() -> None:
    assert brave.parse_results({"type": "search", "query": {"original": "x"}}, limit=5) == []


def test_exa_snippet_prefers_highlights_and_is_cut() -> None:
    row = {
        "url": "https://a.example/",
        "title": "A",
        "text": "word " * 1000,
        "highlights": ["The <b>best</b> sentence.", 3, "Another one."],
        "publishedDate": "2024-05-06T07:08:09.000Z",
    }
    [hit] = exa.parse_results({"results": [row]}, limit=5)
    assert hit.snippet == "The best sentence. Another one."
    assert hit.published == "2024-05-06"
    [hit] = exa.parse_results({"results": [{**row, "highlights": []}]}, limit=5)
    assert hit.snippet.endswith("…")
    assert len(hit.snippet) <= 601


def test_brave_date_falls_back_to_age() -> None:
    rows = [
        {"url": "https://a.example/", "age": "September 20, 2023"},
        {"url": "https://b.example/", "age": "2 days ago"},
    ]
    hits = brave.parse_results({"web": {"results": rows}}, limit=5)
    assert [h.published for h in hits] == ["2023-09-20", None]


def test_clean_text() -> None:
    assert (
        clean_text("<strong>Eiffel</strong>&nbsp;Tower &amp; <em>co</em>\n") == "Eiffel Tower & co"
    )
    assert clean_text(None) == ""
    assert clean_text("a < b and c > d") == "a < b and c > d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 1.5 ", 1.5), ("-4", 0.0), ("99999999", MAX_RETRY_AFTER_S), ("", None)],
)
def test_parse_retry_after_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("value", ["soon", "nan", "inf", None, "Mon, 99 Foo 2024"])
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_parse_retry_after_past_date_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --- construction and factories -----------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_constructor_validation(api: str) -> None:
    cls = PROVIDERS[api]
    with pytest.raises(ValueError, match="needs an API key"):
        cls("  ")
    with pytest.raises(ValueError, match="must be an http"):
        cls("k", base_url="file:///etc/passwd")
    with pytest.raises(ValueError, match="timeout must be positive"):
        cls("k", timeout_s=0)


@pytest.mark.parametrize(
    ("module", "env"),
    [
        (brave, "FOOTNOTE_BRAVE_API_KEY"),
        (tavily, "FOOTNOTE_TAVILY_API_KEY"),
        (exa, "FOOTNOTE_EXA_API_KEY"),
    ],
)
async def test_factories(module: Any, env: str) -> None:
    with pytest.raises(ValueError, match=env):
        module.create(None, 5.0)
    provider: SearchProvider = module.create("k", 3.0)
    assert isinstance(provider, ApiSearchProvider)
    assert provider.timeout_s == 3.0
    assert provider.base_url.startswith("https://api.")
    await provider.aclose()


async def test_borrowed_client_is_not_closed(fake: FakeSearchApis) -> None:
    async with httpx.AsyncClient() as client:
        provider = ExaProvider(API_KEY, base_url=fake.base_url_for("exa"), client=client)
        assert len(await provider.search("tower", limit=1)) == 1
        await provider.aclose()
        assert not client.is_closed


# --- DuckDuckGo (ddgs) ----------------------------------------------------------------------


class FakeDDGS:
    """Stands in for ``ddgs.DDGS``: returns ``rows`` or raises ``error``; can block."""

    def __init__(
        self,
        rows: list[dict[str, Any]] | None = None,
        error: BaseException | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.rows = rows or []
        self.error = error
        self.gate = gate
        self.timeouts: list[int] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, timeout: int) -> FakeDDGS:
        self.timeouts.append(timeout)
        return self

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append((query, kwargs))
        if self.gate is not None:
            self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return self.rows


DDG_ROWS = [
    {"title": "One <b>x</b>", "href": "https://one.example/", "body": "First &amp; best"},
    {"title": "Dup", "href": "https://one.example/", "body": "again"},
    {"title": "Bad", "href": "mailto:a@b.c", "body": ""},
    {"title": "", "href": "https://two.example/", "body": "Second"},
]


async def test_ddg_maps_rows_and_passes_options() -> None:
    client = FakeDDGS(rows=DDG_ROWS)
    provider = DuckDuckGoProvider(timeout_s=2.5, backend="duckduckgo", client_factory=client)
    hits = await provider.search(" tower ", limit=5)
    assert [(h.url, h.title, h.snippet) for h in hits] == [
        ("https://one.example/", "One x", "First & best"),
        ("https://two.example/", "https://two.example/", "Second"),
    ]
    assert {h.engine for h in hits} == {"ddgs"}
    assert client.timeouts == [3]
    assert client.calls == [
        (
            "tower",
            {
                "max_results": 5,
                "backend": "duckduckgo",
                "region": "us-en",
                "safesearch": "moderate",
            },
        )
    ]
    assert await provider.search("tower", limit=1) == hits[:1]
    assert await provider.search("", limit=5) == []
    assert len(client.calls) == 2


async def test_ddg_no_results_is_an_empty_answer() -> None:
    provider = DuckDuckGoProvider(client_factory=FakeDDGS(error=DDGSException("No results found.")))
    assert await provider.search("zzzz", limit=5) == []


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (RatelimitException("202 Ratelimit"), SearchRateLimited, "rate-limiting"),
        (DDGSException(RatelimitException("202")), SearchRateLimited, "rate-limiting"),
        (TimeoutException("timed out"), SearchUnavailable, "timed out reaching its engines"),
        (DDGSException(TimeoutException("x")), SearchUnavailable, "timed out reaching"),
        (DDGSException("ConnectError: boom"), SearchUnavailable, r"failed \(ConnectError: boom\)"),
        (ValueError("secret detail"), SearchUnavailable, r"failed \(ValueError\)"),
    ],
)
async def test_ddg_errors_are_mapped(
    error: Exception, kind: type[SearchUnavailable], message: str
) -> None:
    provider = DuckDuckGoProvider(client_factory=FakeDDGS(error=error))
    with pytest.raises(kind, match=message) as info:
        await provider.search("tower", limit=5)
    assert type(info.value) is kind


async def test_ddg_hang_times_out_and_bounds_threads() -> None:
    gate = threading.Event()
    client = FakeDDGS(rows=DDG_ROWS, gate=gate)
    provider = DuckDuckGoProvider(timeout_s=0.3, max_in_flight=1, client_factory=client)
    try:
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match=r"did not answer within 0.3s"):
            await provider.search("tower", limit=5)
        assert time.monotonic() - started < 1.3
        # The abandoned call still holds the only slot: the next search fails fast.
        with pytest.raises(SearchUnavailable, match="busy"):
            await provider.search("tower", limit=5)
    finally:
        gate.set()
    deadline = time.monotonic() + 5
    while provider.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert provider.in_flight == 0
    assert len(await provider.search("tower", limit=5)) == 2


def test_ddg_factory_and_real_client_seam() -> None:
    provider = duckduckgo.create(None, 4.0)
    assert isinstance(provider, DuckDuckGoProvider)
    assert provider.name == "duckduckgo"
    assert provider.timeout_s == 4.0
    # The real client is built without I/O and still accepts the options we pass.
    assert type(duckduckgo.default_client(3)).__name__ == "DDGS"
    accepted = inspect.signature(DDGS._search_sync).parameters
    assert {"max_results", "backend", "region", "safesearch"} <= set(accepted)
    with pytest.raises(ValueError, match="positive"):
        DuckDuckGoProvider(timeout_s=0)


async def test_connection_dropped_mid_body(fake: FakeSearchApis) -> None:
    fake.cut_body = True
    async with opened("exa", fake) as provider:
        with pytest.raises(SearchUnavailable, match=r"Exa request failed \(RemoteProtocolError\)"):
            await provider.search("tower", limit=3)


async def test_an_over_long_query_in_the_url_is_a_failed_search(fake: FakeSearchApis) -> None:
    async with opened("brave", fake) as provider:
        with pytest.raises(SearchUnavailable, match="InvalidURL"):
            await provider.search("word " * 20_000, limit=5)
