"""Rate limits through the running server: headers, the OpenAI 429, sharing through Redis."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.footnote_server import StartFootnote
from tests.fakes.redis_server import free_port

RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)
HOUR = 3600.0  # long periods: nothing refills noticeably while a test runs on a busy machine
# Light instances: no extraction processes, no upstream unless a test needs one.
LIGHT: dict[str, Any] = {"extract_workers": 0, "with_upstream": False}


def _assert_429(resp: httpx.Response, limit: int) -> None:
    assert resp.status_code == 429
    assert resp.json() == {
        "error": {
            "message": resp.json()["error"]["message"],
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert "Rate limit reached" in resp.json()["error"]["message"]
    assert resp.headers["x-ratelimit-limit-requests"] == str(limit)
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(resp.headers["retry-after"]) >= 1


def test_two_instances_share_one_limit(footnote_factory: StartFootnote, redis_url: str) -> None:
    """Requests alternating between two servers on one Redis spend one allowance."""
    limits = {"rate_limit": 6, "rate_limit_period_s": HOUR}
    a = footnote_factory(redis_url=redis_url, **limits, **LIGHT)
    b = footnote_factory(redis_url=redis_url, **limits, **LIGHT)
    statuses: list[int] = []
    remaining: list[str] = []
    for i in range(9):
        resp = httpx.get(f"{(a, b)[i % 2]}/v1/models", timeout=10)
        statuses.append(resp.status_code)
        remaining.append(resp.headers["x-ratelimit-remaining-requests"])
        if resp.status_code == 429:
            _assert_429(resp, 6)
            # One request comes back every 10 minutes (6 an hour): retry-after says so.
            assert 590 <= int(resp.headers["retry-after"]) <= 600
    assert statuses == [200] * 6 + [429] * 3
    assert remaining == ["5", "4", "3", "2", "1", "0", "0", "0", "0"]


def test_headers_on_api_routes_only(footnote_factory: StartFootnote, redis_url: str) -> None:
    base = footnote_factory(redis_url=redis_url, rate_limit=100, rate_limit_period_s=HOUR, **LIGHT)
    models = httpx.get(f"{base}/v1/models", timeout=10)
    assert models.status_code == 200
    assert [models.headers[h] for h in RATE_HEADERS] == ["100", "99", "36s"]
    # An API error response carries them too.
    bad = httpx.post(f"{base}/v1/chat/completions", content=b"{", timeout=10)
    assert bad.status_code == 400
    assert bad.headers["x-ratelimit-remaining-requests"] == "98"
    for path in ("/healthz", "/openapi/openapi.json"):  # not the API: neither limited nor counted
        resp = httpx.get(f"{base}{path}", timeout=10)
        assert resp.status_code == 200
        assert not any(h in resp.headers for h in RATE_HEADERS)
    again = httpx.get(f"{base}/v1/models", timeout=10)
    assert again.headers["x-ratelimit-remaining-requests"] == "97"


def test_chat_completion_carries_headers(footnote_factory: StartFootnote, redis_url: str) -> None:
    base = footnote_factory(redis_url=redis_url, rate_limit=10, **LIGHT)
    resp = httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": "footnote", "messages": [{"role": "user", "content": "Who was Ed Wood?"}]},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.headers["x-ratelimit-remaining-requests"] == "9"


def test_per_key_allowances(footnote_factory: StartFootnote, redis_url: str) -> None:
    base = footnote_factory(redis_url=redis_url, rate_limit=2, api_keys=("k1", "k2"), **LIGHT)

    def get(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{base}/v1/models", headers=headers, timeout=10)

    k1 = {"authorization": "Bearer k1"}
    assert [get(k1).status_code for _ in range(3)] == [200, 200, 429]
    assert get({"x-api-key": "k1"}).status_code == 429  # same key, other header: same allowance
    assert get({"authorization": "Bearer k2"}).status_code == 200  # another key: its own
    # Wrong keys are counted per IP, and still answered 401 while allowed.
    wrong = [get({"authorization": f"Bearer guess{i}"}) for i in range(3)]
    assert [r.status_code for r in wrong] == [401, 401, 429]
    assert wrong[0].headers["x-ratelimit-remaining-requests"] == "1"


def test_openai_sdk_sees_rate_limit_error(footnote_factory: StartFootnote, redis_url: str) -> None:
    base = footnote_factory(redis_url=redis_url, rate_limit=1, **LIGHT)
    with openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
        client.models.list()
        with pytest.raises(openai.RateLimitError) as info:
            client.models.list()
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.type == "rate_limit_error"
    assert info.value.response.headers["retry-after"] == "60"


def test_memory_limits_without_redis(footnote_factory: StartFootnote) -> None:
    base = footnote_factory(rate_limit=3, **LIGHT)
    statuses = [httpx.get(f"{base}/v1/models", timeout=10).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_redis_down_fails_soft(footnote_factory: StartFootnote) -> None:
    """Redis unreachable: answers go on, limited per process, without waiting on Redis."""
    base = footnote_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit=3, **LIGHT)
    t0 = time.perf_counter()
    resps = [httpx.get(f"{base}/v1/models", timeout=10) for _ in range(4)]
    elapsed = time.perf_counter() - t0
    assert [r.status_code for r in resps] == [200, 200, 200, 429]
    assert resps[0].headers["x-ratelimit-remaining-requests"] == "2"
    assert elapsed < 2.0
