"""FOOTNOTE_REQUEST_TIMEOUT: a 504 before the response starts, an in-band error in a stream,
and the work of the request (page fetches, the upstream call) cancelled, not left running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.footnote_server import StartFootnote
from tests.fakes.server import Receive, Scope, Send, ServerThread, pause, read_body
from tests.fakes.simweb import SimulatedWeb
from tests.fakes.upstream import FakeUpstream

QUESTION = {"model": "footnote", "messages": [{"role": "user", "content": "Who was Ed Wood?"}]}


class HangingUpstream:
    """An upstream that never answers; records when its client hangs up (``disconnected``)."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.disconnected = threading.Event()
        self.server = ServerThread(self, name="hanging-upstream")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.called.set()
        if not await pause(30, receive, self.server.stopping):
            self.disconnected.set()


@pytest.fixture
def hanging() -> Iterator[HangingUpstream]:
    fake = HangingUpstream()
    fake.server.start()
    try:
        yield fake
    finally:
        fake.server.stop()


def _assert_timeout_error(error: Any, seconds: str = "1") -> None:
    assert error == {
        "message": f"The request did not complete within {seconds} seconds.",
        "type": "server_error",
        "param": None,
        "code": "request_timeout",
    }


def test_slow_upstream_gets_504_and_is_cancelled(
    footnote_factory: StartFootnote, hanging: HangingUpstream
) -> None:
    # Enough time for the research to reach the upstream on a busy machine.
    base = footnote_factory(
        request_timeout_s=3.0,
        extract_workers=0,
        upstream_base_url=f"{hanging.server.base_url}/v1",
        upstream_timeout_s=30.0,
    )
    t0 = time.perf_counter()
    resp = httpx.post(f"{base}/v1/chat/completions", json=QUESTION, timeout=10)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 504
    _assert_timeout_error(resp.json()["error"], "3")
    assert 3.0 <= elapsed < 4.0
    assert hanging.called.is_set()
    # The upstream call was cancelled with the request: its connection closed at once.
    assert hanging.disconnected.wait(2.0)


def test_slow_pages_get_504_without_waiting_for_fetches(
    footnote_factory: StartFootnote, simweb: SimulatedWeb
) -> None:
    """Every page takes 5 s (the fetch timeout is 3 s): the deadline cuts the fetches at 1 s."""
    base = footnote_factory(request_timeout_s=1.0, extract_workers=0, with_upstream=False)
    simweb.latency = lambda url: 5.0
    t0 = time.perf_counter()
    resp = httpx.post(f"{base}/v1/chat/completions", json=QUESTION, timeout=10)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 504
    _assert_timeout_error(resp.json()["error"])
    assert elapsed < 2.0


def test_stream_past_deadline_ends_with_error_then_done(
    footnote_factory: StartFootnote, upstream: FakeUpstream
) -> None:
    # Long enough for the research to finish and the stream to start on a busy machine.
    base = footnote_factory(request_timeout_s=3.0, extract_workers=0)
    upstream.script = " ".join(f"word{i}" for i in range(150))  # 50 chunks...
    upstream.inter_chunk_delay_s = 0.2  # ...10 s in all
    events: list[str] = []
    t0 = time.perf_counter()
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json={**QUESTION, "stream": True}, timeout=10
    ) as resp:
        assert resp.status_code == 200
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    elapsed = time.perf_counter() - t0
    assert 3.0 <= elapsed < 4.0
    assert events[-1] == "[DONE]"
    _assert_timeout_error(json.loads(events[-2])["error"], "3")
    chunks = [json.loads(e) for e in events[:-2]]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_fast_requests_and_non_api_routes_are_untouched(footnote_factory: StartFootnote) -> None:
    base = footnote_factory(request_timeout_s=1.0, extract_workers=0)
    assert httpx.post(f"{base}/v1/chat/completions", json=QUESTION, timeout=10).status_code == 200
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
