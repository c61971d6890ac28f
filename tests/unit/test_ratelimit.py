"""Rate limits: GCRA arithmetic in memory, the rate syntax, OpenAI's header formats, settings."""

from __future__ import annotations

import pytest

from app.ratelimit import (
    Decision,
    MemoryLimiter,
    client_identity,
    format_duration,
    rate_headers,
    rate_limit_error,
)
from app.rates import parse_rate
from app.settings import Settings, SettingsError


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_burst_of_exactly_limit_then_refused() -> None:
    clock = Clock()
    limiter = MemoryLimiter(5, 60.0, clock=clock)
    decisions = [await limiter.hit("a") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    # One request comes back every 12 s; the full allowance 60 s after the burst.
    assert decisions[0].reset_s == pytest.approx(12.0)
    assert decisions[4].reset_s == pytest.approx(60.0)
    assert decisions[5].retry_after_s == pytest.approx(12.0)
    assert decisions[5].reset_s == pytest.approx(60.0)


@pytest.mark.anyio
async def test_allowance_refills_continuously() -> None:
    clock = Clock()
    limiter = MemoryLimiter(5, 60.0, clock=clock)
    for _ in range(5):
        await limiter.hit("a")
    clock.now += 11.9
    refused = await limiter.hit("a")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.1, abs=1e-6)
    clock.now += 0.1
    assert (await limiter.hit("a")).allowed
    assert not (await limiter.hit("a")).allowed
    clock.now += 60
    again = await limiter.hit("a")
    assert (again.allowed, again.remaining) == (True, 4)


@pytest.mark.anyio
async def test_refused_requests_spend_nothing_and_clients_are_separate() -> None:
    clock = Clock()
    limiter = MemoryLimiter(2, 10.0, clock=clock)
    assert (await limiter.hit("a")).allowed
    assert (await limiter.hit("a")).allowed
    for _ in range(10):  # hammering while refused does not push the next slot further away
        assert not (await limiter.hit("a")).allowed
    assert (await limiter.hit("b")).allowed  # another client has its own allowance
    clock.now += 5.0
    assert (await limiter.hit("a")).allowed


@pytest.mark.anyio
async def test_odd_limits_still_allow_exactly_limit() -> None:
    clock = Clock()
    limiter = MemoryLimiter(7, 60.0, clock=clock)  # 60/7 s is not a whole microsecond count
    allowed = [(await limiter.hit("a")).allowed for _ in range(8)]
    assert allowed == [True] * 7 + [False]


@pytest.mark.anyio
async def test_tracked_clients_are_bounded() -> None:
    clock = Clock()
    limiter = MemoryLimiter(3, 1.0, max_clients=100, clock=clock)
    for i in range(100):
        await limiter.hit(f"old{i}")
    clock.now += 5  # every old client's allowance is full again: they can be forgotten
    for i in range(50):
        await limiter.hit(f"new{i}")
    assert len(limiter) == 50
    for i in range(200):  # none expired: the oldest go first
        await limiter.hit(f"burst{i}")
    assert len(limiter) == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60", (60, 60.0)),
        ("0", (0, 60.0)),
        ("10/s", (10, 1.0)),
        ("100 / min", (100, 60.0)),
        ("1000/hour", (1000, 3600.0)),
        ("5/D", (5, 86400.0)),
    ],
)
def test_parse_rate(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "1.5", "ten", "10/fortnight", "10/", "/s", "1000001/s"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="requests per"):
        parse_rate(text)


@pytest.mark.anyio
async def test_highest_rate_still_counts() -> None:
    clock = Clock()
    limiter = MemoryLimiter(*parse_rate("1000000/s"), clock=clock)
    assert [(await limiter.hit("a")).allowed for _ in range(3)] == [True] * 3
    with pytest.raises(ValueError, match="at most one request per"):
        MemoryLimiter(1001, 0.001)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.0171, "18ms"),
        (1.0, "1s"),
        (8.64, "8.64s"),
        (60.0, "1m0s"),
        (360.0, "6m0s"),
        (90.5, "1m30.5s"),
        (3723.0, "1h2m3s"),
    ],
)
def test_format_duration_like_openai(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_headers_and_429() -> None:
    ok = Decision(True, 60, 59, 1.0, 0.0)
    assert rate_headers(ok) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
    }
    err = rate_limit_error(Decision(False, 60, 0, 60.0, 0.25), 60.0)
    assert (err.status, err.type, err.code) == (429, "rate_limit_error", "rate_limit_exceeded")
    assert err.headers["retry-after"] == "1"  # whole seconds, rounded up, at least 1
    assert err.headers["retry-after-ms"] == "250"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert "60 requests per 1m0s" in err.message


def _who(headers: dict[str, str], keys: tuple[str, ...], ip: str = "10.1.2.3") -> str:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return client_identity(raw, (ip, 5555), keys)


def test_identity_is_the_valid_key_else_the_ip() -> None:
    keys = ("secret-1", "secret-2")
    by_bearer = _who({"authorization": "Bearer secret-1"}, keys)
    by_header = _who({"x-api-key": "secret-1"}, keys, ip="10.9.9.9")
    assert by_bearer == by_header  # one key, one allowance, wherever it comes from
    assert by_bearer.startswith("key:") and "secret" not in by_bearer
    assert _who({"x-api-key": "secret-2"}, keys) != by_bearer
    # An invented key is no identity: it counts against the IP address.
    assert _who({"authorization": "Bearer made-up"}, keys) == "ip:10.1.2.3"
    assert _who({}, ()) == "ip:10.1.2.3"


def test_settings() -> None:
    s = Settings.from_env({})
    assert (s.redis_url, s.rate_limit, s.request_timeout_s, s.workers) == (None, 0, 120.0, 1)
    s = Settings.from_env(
        {
            "FOOTNOTE_REDIS_URL": "redis://cache:6379/0",
            "FOOTNOTE_RATE_LIMIT": "10/s",
            "FOOTNOTE_REQUEST_TIMEOUT": "2.5",
            "FOOTNOTE_WORKERS": "4",
        }
    )
    assert (s.redis_url, s.rate_limit, s.rate_limit_period_s) == ("redis://cache:6379/0", 10, 1.0)
    assert (s.request_timeout_s, s.workers) == (2.5, 4)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FOOTNOTE_REDIS_URL": "cache:6379"}, "FOOTNOTE_REDIS_URL must start with"),
        ({"FOOTNOTE_RATE_LIMIT": "lots"}, "FOOTNOTE_RATE_LIMIT: expected"),
        ({"FOOTNOTE_REQUEST_TIMEOUT": "0"}, "FOOTNOTE_REQUEST_TIMEOUT must be positive"),
        ({"FOOTNOTE_REQUEST_TIMEOUT": "soon"}, "FOOTNOTE_REQUEST_TIMEOUT must be a number"),
        ({"FOOTNOTE_WORKERS": "0"}, "FOOTNOTE_WORKERS must be between 1 and 64"),
        ({"FOOTNOTE_WORKERS": "two"}, "FOOTNOTE_WORKERS must be a whole number"),
    ],
)
def test_settings_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
