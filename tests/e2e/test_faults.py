"""Faults on a real loopback server: clients hanging up, the upstream failing, search down.

Footnote runs in-process with uvicorn (``footnote_factory``) against the loopback fakes; the
clients are raw httpx, so a test decides exactly when its connection closes. Every wait is
bounded: a test fails instead of hanging.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.searxng import FakeSearxng, SearchResult
from tests.fakes.server import Receive, Scope, Send, ServerThread, pause, read_body, send_bytes
from tests.fakes.upstream import FakeUpstream

Q = {"role": "user", "content": "Who directed Doctor Strange?"}
LONG_ANSWER = "Scott Derrickson directed the film and wrote it with others " * 40
NOTE = "this answer was assembled extractively from the sources."


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _events(lines: Iterator[str]) -> Iterator[Any]:
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: ") :]
            yield data if data == "[DONE]" else json.loads(data)


def _still_serves(base: str) -> None:
    r = httpx.post(
        f"{base}/v1/chat/completions", json={"model": "speed", "messages": [Q]}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


class SlowPages:
    """Pages that take ``delay_s`` to answer; notes when each request began and how it ended."""

    def __init__(self, delay_s: float = 30.0) -> None:
        self.delay_s = delay_s
        self.started: list[float] = []
        self.hung_up: list[float] = []
        self._lock = threading.Lock()
        self.server = ServerThread(self, "127.0.0.7", name="slow-pages")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        with self._lock:
            self.started.append(time.monotonic())
        if not await pause(self.delay_s, receive, self.server.stopping):
            with self._lock:
                self.hung_up.append(time.monotonic())
            return
        body = b"<html><title>Slow</title><body><p>Doctor Strange, slowly.</p></body></html>"
        await send_bytes(send, 200, body, [("content-type", "text/html")])

    def results(self, n: int) -> list[SearchResult]:
        """``n`` SearXNG results pointing here."""
        return [
            SearchResult(
                url=f"{self.server.base_url}/slow/{i}",
                title=f"Doctor Strange slow page {i}",
                content="Doctor Strange directed",
                publishedDate=None,
                engine="fake",
                engines=["fake"],
                positions=[i + 1],
                category="general",
                score=10.0,
            )
            for i in range(n)
        ]


@pytest.fixture
def slow_pages() -> Iterator[SlowPages]:
    pages = SlowPages()
    pages.server.start()
    try:
        yield pages
    finally:
        pages.server.stop()


# --- (a) clients that hang up ---------------------------------------------------------------


def test_client_hanging_up_mid_stream_cancels_the_upstream(
    footnote: str, upstream: FakeUpstream
) -> None:
    upstream.script = LONG_ANSWER
    upstream.inter_chunk_delay_s = 0.05  # ~130 chunks: about 7 s of streaming
    body = {"model": "speed", "messages": [Q], "stream": True}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{footnote}/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        contents = 0
        for event in _events(resp.iter_lines()):
            if (
                isinstance(event, dict)
                and event["choices"]
                and event["choices"][0]["delta"].get("content")
            ):
                contents += 1
            if contents >= 3:
                break
        closed_at = time.monotonic()
    # Leaving the blocks closed the connection, far from the end of the answer.
    assert _wait_for(lambda: bool(upstream.disconnects), timeout=5.0), "upstream never saw it"
    assert upstream.disconnects[0] - closed_at < 2.0
    _still_serves(footnote)


@pytest.mark.parametrize("stream", [False, True])
def test_client_hanging_up_during_research_cancels_the_fetches(
    footnote: str, searxng: FakeSearxng, slow_pages: SlowPages, stream: bool
) -> None:
    # The speed tier reads 4 pages: all of them slow (30 s), far beyond this test.
    searxng.inject_results = slow_pages.results(4)
    body = json.dumps({"model": "speed", "messages": [Q], "stream": stream}).encode()
    url = httpx.URL(footnote)
    assert url.port is not None
    # A raw socket, so the test alone decides when the connection closes.
    sock = socket.create_connection((url.host, url.port), timeout=10)
    try:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        assert _wait_for(lambda: len(slow_pages.started) >= 4, timeout=10.0), "no slow fetches"
        time.sleep(0.2)
        assert not slow_pages.hung_up  # the fetches are waiting on the slow pages
    finally:
        closed_at = time.monotonic()
        sock.close()  # the client hangs up mid-research
    # Every fetch is cancelled at once: well before the tier's 3 s fetch deadline.
    assert _wait_for(lambda: len(slow_pages.hung_up) >= 4, timeout=5.0), slow_pages.hung_up
    assert max(slow_pages.hung_up) - closed_at < 1.0
    searxng.inject_results = []
    _still_serves(footnote)


# --- (c) the upstream failing ---------------------------------------------------------------


@pytest.fixture(scope="module")
def footnote_error(footnote_factory: Callable[..., str]) -> str:
    """A Footnote that answers upstream outages with an error (no extractive fallback)."""
    return footnote_factory(upstream_fallback="error", upstream_timeout_s=1.0)


@pytest.fixture(scope="module")
def footnote_fast_timeout(footnote_factory: Callable[..., str]) -> str:
    """A Footnote (extractive fallback, the default) whose upstream times out after 1 s."""
    return footnote_factory(upstream_timeout_s=1.0)


def _chat(base: str, **extra: Any) -> httpx.Response:
    body = {"model": "speed", "messages": [Q], **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)


def _check_fallback(basis: list[Any], reason: str) -> None:
    assert basis, "no basis"
    reasoning = basis[0]["reasoning"]
    assert reasoning.startswith(f"The upstream model failed ({reason}); {NOTE}"), reasoning


@pytest.mark.parametrize("status", [500, 503, 429])
def test_upstream_outage_falls_back_to_an_extractive_answer(
    footnote: str, upstream: FakeUpstream, status: int
) -> None:
    upstream.fail_with = status
    r = _chat(footnote)
    assert r.status_code == 200, r.text
    assert r.headers["x-footnote-fallback"] == "extractive"
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    assert "Strange" in text and re.search(r"\[\d+\]", text), text
    _check_fallback(body["basis"], f"HTTP {status}")
    assert body["usage"]["completion_tokens"] == 0  # no model wrote it
    assert len(upstream.requests) == 1  # this server allows no retries


def test_upstream_timeout_falls_back_too(
    footnote_fast_timeout: str, upstream: FakeUpstream
) -> None:
    upstream.delay_s = 3.0
    started = time.monotonic()
    r = _chat(footnote_fast_timeout)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2.9  # the timeout cut it, not the fake's delay
    assert r.headers["x-footnote-fallback"] == "extractive"
    _check_fallback(r.json()["basis"], "timed out")


def test_an_answer_from_the_upstream_is_not_flagged(footnote: str) -> None:
    r = _chat(footnote)
    assert r.status_code == 200
    assert "x-footnote-fallback" not in r.headers
    assert NOTE not in r.json()["basis"][0]["reasoning"]


def test_streaming_falls_back_when_the_upstream_fails_before_the_first_byte(
    footnote: str, upstream: FakeUpstream
) -> None:
    upstream.fail_with = 502
    with httpx.stream(
        "POST",
        f"{footnote}/v1/chat/completions",
        json={"model": "speed", "messages": [Q], "stream": True},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-footnote-fallback"] == "extractive"
        events = list(_events(resp.iter_lines()))
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    assert all("error" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Strange" in text and re.search(r"\[\d+\]", text), text
    _check_fallback(chunks[-1]["basis"], "HTTP 502")


def test_streaming_failure_after_the_first_byte_is_reported_in_band(
    footnote: str, upstream: FakeUpstream
) -> None:
    upstream.script = LONG_ANSWER
    upstream.break_stream_after = 3
    with httpx.stream(
        "POST",
        f"{footnote}/v1/chat/completions",
        json={"model": "speed", "messages": [Q], "stream": True},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        assert "x-footnote-fallback" not in resp.headers
        events = list(_events(resp.iter_lines()))
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "upstream_error"
    assert any(isinstance(e, dict) and e.get("choices") for e in events)


def test_fallback_error_keeps_the_502_and_504(footnote_error: str, upstream: FakeUpstream) -> None:
    upstream.fail_with = 500
    r = _chat(footnote_error)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "upstream_error"
    assert "x-footnote-fallback" not in r.headers
    upstream.reset()
    upstream.delay_s = 3.0
    r = _chat(footnote_error)
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "upstream_timeout"
    upstream.reset()
    upstream.fail_with = 503
    r = _chat(footnote_error, stream=True)
    assert r.status_code == 502, r.text  # before the stream: a plain error response


def test_upstream_rejecting_us_is_not_hidden_by_the_fallback(
    footnote: str, upstream: FakeUpstream
) -> None:
    upstream.fail_with = 401
    r = _chat(footnote)
    assert r.status_code == 502, r.text
    assert r.headers["x-should-retry"] == "false"
    assert "x-footnote-fallback" not in r.headers


# --- (d) search down ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["speed", "core"])
def test_search_down_is_503_streaming_or_not(
    footnote: str, searxng: FakeSearxng, model: str
) -> None:
    # core reads several SearXNG result pages at once: page 1's failure is still a 503.
    searxng.fail_with = 502
    for stream in (False, True):
        r = _chat(footnote, stream=stream, model=model)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "search_unavailable"
