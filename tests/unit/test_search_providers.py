"""Search providers: SearXNG (mock transport, loopback server), the bundled corpus, registry."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import uvicorn

from retrieval.errors import FetchError, SearchRateLimited, SearchUnavailable
from retrieval.extract import TrafilaturaExtractor
from retrieval.protocols import Fetcher, SearchProvider
from retrieval.search.bundled import BundledCorpus, default_data_path
from retrieval.search.duckduckgo import DuckDuckGoProvider
from retrieval.search.registry import PROVIDERS, SearchConfig, build_provider
from retrieval.search.searxng import SearxngProvider
from tests.fakes.searxng import FakeSearxng

DATA = Path(__file__).resolve().parents[2] / "retrieval" / "data"
BASE = "http://footnote.test:8000"

SEARX_BODY = {
    "query": "ed wood",
    "results": [
        {
            "url": "https://en.example.org/wiki/Ed_Wood",
            "title": "Ed  Wood",
            "content": "American\n<b>filmmaker</b> &amp; actor",
            "publishedDate": "2019-05-04T10:00:00",
            "engine": "wikipedia",
        },
        {"url": "https://en.example.org/wiki/Ed_Wood", "title": "Duplicate", "engine": "bing"},
        {"url": "ftp://files.example.org/x", "title": "Not the web"},
        {"url": "http://[broken", "title": "Unparseable"},
        {"url": "javascript:alert(1)", "title": "Script"},
        {"title": "No URL at all"},
        "not even an object",
        {"url": "http://b.example.org/", "engines": ["ddg", "brave"], "publishedDate": None},
        {"url": "https://c.example.org/c", "title": "C", "content": None},
    ],
}

Handler = Callable[[httpx.Request], httpx.Response]


def provider_with(handler: Handler, **kwargs: Any) -> SearxngProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SearxngProvider("http://searx.test/base/", client=client, **kwargs)


# --- SearXNG: request shape and result mapping (MockTransport) -------------------------


@pytest.mark.anyio
async def test_searxng_maps_results_and_sends_the_json_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SEARX_BODY)

    provider = provider_with(handler)
    hits = await provider.search("ed wood", limit=10)

    assert provider.name == "searxng"
    assert seen[0].url.path == "/base/search"
    assert dict(seen[0].url.params) == {"q": "ed wood", "format": "json", "pageno": "1"}
    assert [h.url for h in hits] == [
        "https://en.example.org/wiki/Ed_Wood",
        "http://b.example.org/",
        "https://c.example.org/c",
    ]
    first, second, third = hits
    assert (first.title, first.snippet, first.published, first.engine) == (
        "Ed Wood",
        "American filmmaker & actor",
        "2019-05-04",
        "wikipedia",
    )
    assert (second.title, second.engine, second.published) == (
        "http://b.example.org/",
        "ddg,brave",
        None,
    )
    assert third.snippet == ""


@pytest.mark.anyio
async def test_searxng_honours_the_limit() -> None:
    provider = provider_with(lambda _: httpx.Response(200, json=SEARX_BODY))
    assert len(await provider.search("q", limit=2)) == 2
    assert await provider.search("q", limit=0) == []
    assert await provider.search("   ", limit=5) == []


def raise_(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda _: httpx.Response(500, text="boom"), "HTTP 500"),
        (lambda _: httpx.Response(502), "HTTP 502"),
        (lambda _: httpx.Response(403), "json format"),
        (lambda _: httpx.Response(200, text="<html>not json</html>"), "malformed JSON"),
        (lambda _: httpx.Response(200, json=["a", "list"]), "without a results list"),
        (lambda _: httpx.Response(200, json={"results": "nope"}), "without a results list"),
        (raise_(httpx.ConnectError("connection refused")), "unreachable"),
        (raise_(httpx.ReadTimeout("read timed out")), "did not answer within 3s"),
    ],
)
async def test_searxng_failures_become_search_unavailable(handler: Handler, message: str) -> None:
    provider = provider_with(handler, timeout_s=3.0)
    with pytest.raises(SearchUnavailable, match=message) as info:
        await provider.search("anything", limit=5)
    # One clear line for the API error body: no chained traceback, no newlines.
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert "\n" not in str(info.value)


@pytest.mark.anyio
async def test_searxng_rate_limit_carries_retry_after() -> None:
    provider = provider_with(lambda _: httpx.Response(429, headers={"retry-after": "5"}))
    with pytest.raises(SearchRateLimited, match=r"HTTP 429; retry after 5s") as info:
        await provider.search("anything", limit=5)
    assert info.value.retry_after == 5.0
    bare = provider_with(lambda _: httpx.Response(429))
    with pytest.raises(SearchRateLimited) as info:
        await bare.search("anything", limit=5)
    assert info.value.retry_after is None


@pytest.mark.anyio
async def test_searxng_refuses_an_oversized_body() -> None:
    huge = b'{"results": [' + b" " * 5_100_000 + b"]}"
    provider = provider_with(lambda _: httpx.Response(200, content=huge))
    with pytest.raises(SearchUnavailable, match="oversized"):
        await provider.search("anything", limit=5)


@pytest.mark.anyio
async def test_searxng_an_over_long_query_is_a_failed_search_not_a_crash() -> None:
    provider = provider_with(lambda _: httpx.Response(200, json=SEARX_BODY))
    with pytest.raises(SearchUnavailable, match="InvalidURL"):
        await provider.search("word " * 20_000, limit=5)


@pytest.mark.anyio
async def test_searxng_closes_only_the_client_it_created() -> None:
    injected = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    await SearxngProvider("http://searx.test", client=injected).aclose()
    assert not injected.is_closed
    await injected.aclose()
    owned = SearxngProvider("http://searx.test")
    await owned.aclose()


@pytest.mark.parametrize("url", ["searx.local:8080", "ftp://searx.test", "http://"])
def test_searxng_rejects_a_non_http_base_url(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        SearxngProvider(url)
    with pytest.raises(ValueError, match="timeout"):
        SearxngProvider("http://searx.test", timeout_s=0)


# --- SearXNG against a real loopback server -------------------------------------------


async def searx_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """A tiny SearXNG: /ok answers, /slow stalls, /drip trickles bytes, /down fails."""
    assert scope["type"] == "http"
    path: str = scope["path"]
    headers = [(b"content-type", b"application/json")]
    if path.startswith("/down/"):
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    if path.startswith("/slow/"):
        await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = json.dumps(SEARX_BODY).encode()
    if path.startswith("/drip/"):
        # Each byte arrives well inside httpx's per-read timeout; only a deadline stops it.
        for i in range(12):
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": True})
            await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def searx_server() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        searx_app, log_level="error", lifespan="off", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "loopback SearXNG did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.mark.anyio
async def test_searxng_over_a_real_socket(searx_server: str) -> None:
    provider = SearxngProvider(searx_server + "/ok", timeout_s=5.0)
    try:
        hits = await provider.search("ed wood", limit=5)
    finally:
        await provider.aclose()
    assert [h.url for h in hits][:1] == ["https://en.example.org/wiki/Ed_Wood"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "message"),
    [("/down", "HTTP 503"), ("/slow", "did not answer within 0.4s"), ("/drip", "within 0.4s")],
)
async def test_searxng_loopback_failures(searx_server: str, route: str, message: str) -> None:
    provider = SearxngProvider(searx_server + route, timeout_s=0.4)
    started = time.monotonic()
    try:
        with pytest.raises(SearchUnavailable, match=message):
            await provider.search("ed wood", limit=5)
    finally:
        await provider.aclose()
    assert time.monotonic() - started < 1.0


@pytest.mark.anyio
async def test_searxng_against_the_simulated_web(searxng: FakeSearxng) -> None:
    provider = SearxngProvider(searxng.base_url, timeout_s=5.0)
    try:
        hits = await provider.search("Scott Derrickson American director", limit=5)
        assert any(h.url.endswith("/wiki/Scott_Derrickson") for h in hits)
        assert searxng.queries[-1]["format"] == "json"
        searxng.fail_with = 429
        with pytest.raises(SearchRateLimited):
            await provider.search("Scott Derrickson", limit=5)
    finally:
        await provider.aclose()


def test_searxng_unreachable_port() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def go() -> None:
        provider = SearxngProvider(f"http://127.0.0.1:{port}", timeout_s=2.0)
        try:
            await provider.search("q", limit=3)
        finally:
            await provider.aclose()

    with pytest.raises(SearchUnavailable, match="unreachable"):
        asyncio.run(go())


# --- The bundled corpus ---------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> BundledCorpus:
    return BundledCorpus.load(BASE)


@pytest.fixture(scope="module")
def sampled_questions() -> list[dict[str, Any]]:
    with (DATA / "questions.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_bundled_corpus_satisfies_both_protocols(corpus: BundledCorpus) -> None:
    provider: SearchProvider = corpus
    fetcher: Fetcher = corpus
    assert provider.name == "bundled"
    assert fetcher is corpus


@pytest.mark.anyio
async def test_bundled_search_finds_the_gold_pages(
    corpus: BundledCorpus, sampled_questions: list[dict[str, Any]]
) -> None:
    answerable = [q for q in sampled_questions if q["answerable"]]
    found = top = 0
    for q in answerable:
        hits = await corpus.search(q["question"], limit=8)
        urls = [h.url for h in hits]
        assert len(urls) == len(set(urls)) <= 8
        assert all(u.startswith(BASE + "/corpus/") for u in urls)
        assert all(h.engine == "bundled" and h.title and len(h.snippet) <= 241 for h in hits)
        gold = {BASE + route for route in q["gold_routes"]}
        found += bool(gold & set(urls))
        top += bool(urls) and urls[0] in gold
    assert found / len(answerable) >= 0.9
    assert top / len(answerable) >= 0.7


@pytest.mark.anyio
async def test_bundled_search_edge_cases(corpus: BundledCorpus) -> None:
    assert await corpus.search("Scott Derrickson", limit=0) == []
    assert await corpus.search("the of and", limit=5) == []
    assert await corpus.search("qwzxv plorkish", limit=5) == []
    hits = await corpus.search("Muggsy Bogues shortest player", limit=3)
    assert "shortest player" in hits[0].snippet


@pytest.mark.anyio
async def test_bundled_fetch_serves_its_html_and_it_extracts(
    corpus: BundledCorpus, sampled_questions: list[dict[str, Any]]
) -> None:
    q = next(q for q in sampled_questions if q["source"] == "hotpotqa")
    url = BASE + q["gold_routes"][0]
    page = await corpus.fetch(url)
    assert (page.url, page.final_url, page.status) == (url, url, 200)
    assert page.content_type == "text/html" and page.charset == "utf-8"
    assert page.body == corpus.page_html(q["gold_routes"][0])
    doc = TrafilaturaExtractor().extract(page)
    assert doc is not None and doc.url == url
    assert any(sentence in doc.text for sentence in q["gold_sentences"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        BASE + "/corpus/wiki/wiki/No_such_page",
        "http://elsewhere.test/corpus/wiki/wiki/Ed_Wood",
        BASE + "/other/wiki/Ed_Wood",
        "not a url",
    ],
)
async def test_bundled_fetch_refuses_other_urls(corpus: BundledCorpus, url: str) -> None:
    with pytest.raises(FetchError) as info:
        await corpus.fetch(url)
    assert info.value.reason == "http_status"


def test_page_html_accepts_the_forms_routers_pass(corpus: BundledCorpus) -> None:
    page = next(p for p in corpus.pages if "%" in p.path)
    route = corpus.url_for(page)[len(BASE) :]
    bare = route[len("/corpus") :]
    html = page.html.encode()
    for form in (route, bare, bare.lstrip("/"), unquote(route), unquote(bare)):
        assert corpus.page_html(form) == html, form
    assert corpus.page_html("/corpus/wiki/nope") is None
    assert corpus.page_html("") is None


def test_every_sampled_question_resolves_to_bundled_pages(
    corpus: BundledCorpus, sampled_questions: list[dict[str, Any]]
) -> None:
    assert len(sampled_questions) >= 50
    for q in sampled_questions:
        assert q["gold_routes"] and all(corpus.page_html(r) for r in q["gold_routes"])


def test_bundled_data_is_small_and_licensed() -> None:
    assert default_data_path().stat().st_size < 1_500_000
    license_text = (DATA / "LICENSE.md").read_text(encoding="utf-8")
    for needle in ("CC BY-SA 4.0", "HotpotQA", "SQuAD", "Wikipedia", "Apache-2.0", "Readability"):
        assert needle in license_text


# --- The registry ---------------------------------------------------------------------


def test_registry_builds_the_bundled_corpus() -> None:
    provider = build_provider("Bundled", SearchConfig(None, 5.0, "http://host.test:9/"))
    assert isinstance(provider, BundledCorpus)
    assert provider.base_url == "http://host.test:9"


@pytest.mark.anyio
async def test_registry_builds_searxng() -> None:
    provider = build_provider("searxng", SearchConfig("http://searx.test", 4.0, BASE))
    assert isinstance(provider, SearxngProvider)
    assert provider.timeout_s == 4.0
    await provider.aclose()


@pytest.mark.anyio
async def test_registry_builds_duckduckgo_without_a_key() -> None:
    provider = build_provider("duckduckgo", SearchConfig(None, 4.0, BASE))
    assert isinstance(provider, DuckDuckGoProvider) and provider.name == "duckduckgo"
    await provider.aclose()


def test_registry_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="FOOTNOTE_SEARXNG_URL"):
        build_provider("searxng", SearchConfig(None, 4.0, BASE))
    with pytest.raises(
        ValueError, match="known providers: brave, bundled, duckduckgo, exa, local, searxng, tavily"
    ):
        build_provider("google", SearchConfig(None, 4.0, BASE))


def test_registering_a_provider_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake:
        name = "fake"

        async def search(self, query: str, *, limit: int) -> list[Any]:
            return []

    monkeypatch.setitem(PROVIDERS, "fake", lambda config: Fake())
    assert build_provider("fake", SearchConfig(None, 1.0, BASE)).name == "fake"


def test_registry_builds_a_fallback_chain_in_order() -> None:
    from retrieval.search.fallback import FallbackProvider

    config = SearchConfig(searxng_url="http://127.0.0.1:9", brave_api_key="k")
    chain = build_provider("searxng, brave", config)
    assert isinstance(chain, FallbackProvider)
    assert chain.name == "searxng+brave"
    with pytest.raises(ValueError, match="FOOTNOTE_TAVILY_API_KEY"):
        build_provider("searxng,tavily", config)


@pytest.mark.anyio
async def test_searxng_reads_further_pages_for_larger_limits(searxng: FakeSearxng) -> None:
    provider = SearxngProvider(searxng.base_url, timeout_s=5.0)
    try:
        searxng.queries.clear()
        hits = await provider.search("American film director", limit=20)
        assert sorted(int(q["pageno"]) for q in searxng.queries) == [1, 2]
        assert 10 < len(hits) <= 20
        assert len({h.url for h in hits}) == len(hits)
        searxng.queries.clear()
        assert len(await provider.search("American film director", limit=10)) <= 10
        assert [q["pageno"] for q in searxng.queries] == [1]
    finally:
        await provider.aclose()
