"""The upstream retry policy (``app.answer.upstream.RetryPolicy``), alone and over loopback."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from app.answer.upstream import RetryPolicy, Upstream, is_outage, retry_after_s, retryable
from app.errors import UpstreamError
from app.settings import Settings, SettingsError
from tests.fakes.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Question: what?\n\nNo sources."}]


def _status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("failed", response=response, body=None)


def _connect_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1/"))


def _timeout() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=httpx2.Request("POST", "http://127.0.0.1/"))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_status_error(500), True),
        (_status_error(503), True),
        (_status_error(429), True),
        (_status_error(408), True),
        (_status_error(400), False),
        (_status_error(401), False),
        (_status_error(404), False),
        (_status_error(503, {"x-should-retry": "false"}), False),
        (_status_error(400, {"x-should-retry": "true"}), True),
        (_connect_error(), True),
        (_timeout(), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_is_retried(exc: Exception, expected: bool) -> None:
    assert retryable(exc) is expected


def test_retry_after_headers() -> None:
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "100", "retry-after": "9"}) == 0.1
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = retry_after_s({"retry-after": date})
    assert wait is not None and 25 < wait <= 31


def test_waits_backoff_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=0.5, max_delay_s=3.0)
    exc = _status_error(503)
    for retry, full in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        for _ in range(20):
            wait = policy.wait_s(retry, exc)
            assert wait is not None and full / 2 <= wait <= full
    assert policy.wait_s(5, exc) is None  # attempts spent


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=2, max_delay_s=5.0)
    assert policy.wait_s(0, _status_error(429, {"retry-after": "4"})) == 4.0
    assert policy.wait_s(0, _status_error(429, {"retry-after-ms": "20"})) == 0.02
    # Asked to wait longer than the cap: stop now (and fall back) rather than hold the client.
    assert policy.wait_s(0, _status_error(429, {"retry-after": "30"})) is None
    assert policy.wait_s(0, _status_error(400)) is None
    assert RetryPolicy(max_retries=0).wait_s(0, _status_error(503)) is None


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (UpstreamError("t", timeout=True), True),
        (UpstreamError("unreachable"), True),
        (UpstreamError("s", status=500), True),
        (UpstreamError("s", status=503), True),
        (UpstreamError("s", status=429), True),
        (UpstreamError("s", status=400), False),
        (UpstreamError("s", status=401), False),
        (UpstreamError("s", status=404), False),
    ],
)
def test_outages(exc: UpstreamError, outage: bool) -> None:
    assert is_outage(exc) is outage


def test_settings_from_env() -> None:
    default = Settings.from_env({})
    assert default.upstream_fallback == "extractive"
    assert default.upstream_max_retries == 1
    assert default.upstream_retry_max_wait_s == 8.0
    s = Settings.from_env(
        {
            "FOOTNOTE_UPSTREAM_FALLBACK": "Error",
            "FOOTNOTE_UPSTREAM_MAX_RETRIES": "0",
            "FOOTNOTE_UPSTREAM_RETRY_MAX_WAIT": "2.5",
        }
    )
    assert (s.upstream_fallback, s.upstream_max_retries, s.upstream_retry_max_wait_s) == (
        "error",
        0,
        2.5,
    )
    with pytest.raises(SettingsError, match="FOOTNOTE_UPSTREAM_FALLBACK"):
        Settings.from_env({"FOOTNOTE_UPSTREAM_FALLBACK": "retry"})
    with pytest.raises(SettingsError, match="FOOTNOTE_UPSTREAM_MAX_RETRIES"):
        Settings.from_env({"FOOTNOTE_UPSTREAM_MAX_RETRIES": "-1"})


# --- over loopback --------------------------------------------------------------------------


@pytest.fixture
async def client(upstream: FakeUpstream) -> AsyncIterator[Upstream]:
    llm = Upstream(
        base_url=upstream.base_url,
        api_key="k",
        model="fake-model",
        timeout_s=5.0,
        max_retries=2,
        retry_max_wait_s=1.0,
    )
    try:
        yield llm
    finally:
        await llm.aclose()


@pytest.mark.anyio
async def test_transient_failures_are_retried(client: Upstream, upstream: FakeUpstream) -> None:
    upstream.fail_with, upstream.fail_times = 503, 2
    upstream.fail_headers = {"retry-after-ms": "10"}
    upstream.script = "fine"
    result = await client.complete(MESSAGES, {})
    assert result.text == "fine"
    assert len(upstream.requests) == 3


@pytest.mark.anyio
async def test_attempts_are_bounded(client: Upstream, upstream: FakeUpstream) -> None:
    upstream.fail_with = 500
    upstream.fail_headers = {"retry-after-ms": "10"}
    with pytest.raises(UpstreamError) as info:
        await client.complete(MESSAGES, {})
    assert info.value.status == 500
    assert len(upstream.requests) == 3  # 1 + max_retries, not the SDK's own extra retries


@pytest.mark.anyio
async def test_a_long_retry_after_stops_the_retries(
    client: Upstream, upstream: FakeUpstream
) -> None:
    upstream.fail_with = 429
    upstream.fail_headers = {"retry-after": "60"}
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await client.complete(MESSAGES, {})
    assert info.value.status == 429
    assert len(upstream.requests) == 1
    assert time.monotonic() - started < 2.0


@pytest.mark.anyio
async def test_rejections_and_timeouts_are_not_retried(
    upstream: FakeUpstream, client: Upstream
) -> None:
    upstream.fail_with = 400
    with pytest.raises(UpstreamError):
        await client.complete(MESSAGES, {})
    assert len(upstream.requests) == 1
    upstream.reset()
    upstream.delay_s = 2.0
    quick = Upstream(
        base_url=upstream.base_url, api_key="k", model="m", timeout_s=0.3, max_retries=2
    )
    try:
        with pytest.raises(UpstreamError) as info:
            await quick.complete(MESSAGES, {})
    finally:
        await quick.aclose()
    assert info.value.timeout
    assert len(upstream.requests) == 1


@pytest.mark.anyio
async def test_opening_a_stream_is_retried(client: Upstream, upstream: FakeUpstream) -> None:
    upstream.fail_with, upstream.fail_times = 502, 1
    upstream.fail_headers = {"retry-after-ms": "10"}
    upstream.script = "streamed answer"
    opened = await client.stream(MESSAGES, {})
    await opened.start()
    text = "".join([piece async for piece in opened.deltas()])
    assert text == "streamed answer"
    assert len(upstream.requests) == 2


@pytest.mark.anyio
async def test_refused_connections_are_retried() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = Upstream(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        model="m",
        timeout_s=2.0,
        max_retries=1,
        retry_max_wait_s=0.05,
    )
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as info:
            await llm.complete(MESSAGES, {})
    finally:
        await llm.aclose()
    assert info.value.status is None and not info.value.timeout
    assert is_outage(info.value)
    assert time.monotonic() - started < 2.0
