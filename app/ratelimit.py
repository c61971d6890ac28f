"""Per-client request rate limits (``FOOTNOTE_RATE_LIMIT``), shared through Redis when set.

The algorithm is GCRA, the continuous form of a token bucket: a client may spend ``limit``
requests at once, and one more becomes available every ``period / limit``. Its whole state
is one number per client, the "theoretical arrival time" (TAT), so the Redis version is a
single key updated atomically by one Lua script that reads the clock of Redis itself (no
skew between replicas). ``MemoryLimiter`` does the same arithmetic in integer microseconds,
so both backends answer identically.

Clients are identified by their API key (hashed; never stored in clear) when the server has
keys and the key given is one of them, otherwise by their IP address.

Redis outage policy: *fail soft*. While Redis is unreachable each process falls back to its
own in-memory limiter (the limit then holds per worker instead of globally), so requests
are neither refused for an outage nor left unlimited; Redis is retried after a short
cool-down. Every call to Redis is bounded by a deadline, so an outage never hangs a request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import anyio
import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis

from app.errors import ApiError, send_error
from retrieval.redis_cache import REDIS_FAILURES, Breaker

log = logging.getLogger("footnote.ratelimit")

RATE_PREFIX = "footnote:rate:"


class Decision(msgspec.Struct, frozen=True):
    """The outcome of one request against a limit; durations in seconds."""

    allowed: bool
    limit: int
    remaining: int
    # Until the client's full allowance is back (OpenAI's ``x-ratelimit-reset-requests``).
    reset_s: float
    # Until the next request would be allowed (0 when this one was).
    retry_after_s: float


class RateLimiter(Protocol):
    """Counts one request of ``client`` and says whether it may proceed."""

    limit: int
    period_s: float

    async def hit(self, client: str) -> Decision:
        """Spend one request of ``client``'s allowance (nothing is spent when refused)."""
        ...


def _gcra(tat: int, now: int, limit: int, period_us: int) -> tuple[Decision, int | None]:
    """One GCRA step in microseconds: the decision and the new TAT (``None``: unchanged).

    Kept identical to ``_LUA`` below: ``interval`` is rounded down and the capacity is
    ``interval * limit``, so exactly ``limit`` requests fit in a burst.
    """
    interval = period_us // limit
    capacity = interval * limit
    tat = max(tat, now)
    ahead = tat + interval - now
    if ahead > capacity:
        return Decision(False, limit, 0, (tat - now) / 1e6, (ahead - capacity) / 1e6), None
    remaining = (capacity - ahead) // interval
    return Decision(True, limit, remaining, ahead / 1e6, 0.0), tat + interval


# KEYS[1]: the client's key. ARGV: period in microseconds, limit.
# Returns {allowed (0/1), remaining, reset_us, retry_after_us}.
_LUA = """
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(period / limit)
local capacity = interval * limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead > capacity then
  return {0, 0, tat - now, ahead - capacity}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.ceil(ahead / 1000))
return {1, math.floor((capacity - ahead) / interval), ahead, 0}
"""


def _check(limit: int, period_s: float) -> None:
    if limit < 1 or period_s < 1e-3 or limit > period_s * 1e6:
        raise ValueError("need limit >= 1, period_s >= 0.001 and at most one request per µs")


class MemoryLimiter:
    """GCRA in this process's memory; the same answers as ``RedisLimiter`` gives globally.

    At most ``max_clients`` are tracked: beyond that, clients whose allowance is full again
    are forgotten first (they lose nothing), then the oldest.
    """

    def __init__(
        self,
        limit: int,
        period_s: float = 60.0,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check(limit, period_s)
        self.limit = limit
        self.period_s = period_s
        self._period_us = round(period_s * 1e6)
        self._max_clients = max_clients
        self._clock = clock
        self._tats: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, client: str) -> Decision:
        """Spend one request of ``client`` (never awaits: atomic on one event loop)."""
        now = round(self._clock() * 1e6)
        decision, tat = _gcra(self._tats.get(client, 0), now, self.limit, self._period_us)
        if tat is not None:
            self._tats.pop(client, None)  # re-insert: dict order is last-use order
            self._tats[client] = tat
            if len(self._tats) > self._max_clients:
                self._prune(now)
        return decision

    def _prune(self, now: int) -> None:
        for client in [c for c, tat in self._tats.items() if tat <= now]:
            del self._tats[client]
        while len(self._tats) > self._max_clients:
            del self._tats[next(iter(self._tats))]


class RedisLimiter:
    """GCRA in Redis: one key per client, updated atomically by a Lua script.

    Every replica and worker using the same Redis shares one allowance per client. When
    Redis fails (refused, timed out after ``op_timeout_s``), ``fallback`` answers instead and
    Redis is skipped for the breaker's cool-down (see the module docstring).
    """

    def __init__(
        self,
        client: Redis,
        limit: int,
        period_s: float = 60.0,
        *,
        op_timeout_s: float = 1.0,
        prefix: str = RATE_PREFIX,
        breaker: Breaker | None = None,
    ) -> None:
        _check(limit, period_s)
        self.limit = limit
        self.period_s = period_s
        self._period_us = round(period_s * 1e6)
        self._timeout_s = op_timeout_s
        self._prefix = prefix
        self._script = client.register_script(_LUA)
        self.fallback = MemoryLimiter(limit, period_s)
        self.breaker = breaker or Breaker("redis rate limiter")

    async def hit(self, client: str) -> Decision:
        """Spend one request of ``client`` in Redis, or locally while Redis is down."""
        if self.breaker.allow():
            try:
                with anyio.fail_after(self._timeout_s):
                    reply = await self._script(
                        keys=[self._prefix + client], args=[self._period_us, self.limit]
                    )
            except REDIS_FAILURES as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                allowed, remaining, reset_us, retry_us = (int(x) for x in reply)
                return Decision(
                    bool(allowed), self.limit, remaining, reset_us / 1e6, retry_us / 1e6
                )
        return await self.fallback.hit(client)


def format_duration(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` format: ``"20ms"``, ``"1.5s"``, ``"6m0s"``, ``"1h2m3s"``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours >= 1:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes >= 1:
        return f"{int(minutes)}m{text}"
    return text


def rate_headers(decision: Decision) -> dict[str, str]:
    """The ``x-ratelimit-*-requests`` headers OpenAI sends, for ``decision``."""
    return {
        "x-ratelimit-limit-requests": str(decision.limit),
        "x-ratelimit-remaining-requests": str(decision.remaining),
        "x-ratelimit-reset-requests": format_duration(decision.reset_s),
    }


def rate_limit_error(decision: Decision, period_s: float) -> ApiError:
    """The OpenAI-shaped 429 for a refused request, with ``retry-after`` in whole seconds."""
    wait = max(1, math.ceil(decision.retry_after_s))
    headers = rate_headers(decision)
    headers["retry-after"] = str(wait)
    headers["retry-after-ms"] = str(max(1, math.ceil(decision.retry_after_s * 1000)))
    return ApiError(
        429,
        f"Rate limit reached: {decision.limit} requests per {format_duration(period_s)}. "
        f"Please try again in {format_duration(decision.retry_after_s)}.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers=headers,
    )


def is_api_path(path: str) -> bool:
    """The OpenAI-compatible API, what limits and deadlines cover: ``/v1/...``, ``/v1beta/...``
    and the bare ``/chat/completions``. Health checks, metrics, corpus pages and ``/`` are not.
    """
    return path.startswith(("/v1/", "/v1beta/", "/chat/"))


def client_identity(
    raw_headers: Iterable[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    api_keys: tuple[str, ...],
) -> str:
    """``key:<sha256>`` for a request carrying one of ``api_keys``, else ``ip:<address>``.

    ``raw_headers`` and ``client`` are the ASGI scope's. An unknown key is not an identity
    (anyone could invent one per request): such requests count against their IP address,
    and the auth guard refuses them anyway.
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
    scheme, _, token = headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    given = given or headers.get("x-api-key", "").strip()
    if given and any(hmac.compare_digest(given.encode(), key.encode()) for key in api_keys):
        return "key:" + hashlib.sha256(given.encode()).hexdigest()[:32]
    return "ip:" + (client[0] if client else "unknown")


class RateLimitMiddleware(ASGIMiddleware):
    """Applies the app's ``RateLimiter`` (``services.limiter``) to every API request.

    Allowed responses carry the ``x-ratelimit-*`` headers, whatever their status; a refused
    request gets the OpenAI 429. Without a limiter (``FOOTNOTE_RATE_LIMIT`` unset or 0) this
    passes requests through untouched.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, api_keys: tuple[str, ...]) -> None:
        self.api_keys = api_keys

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request, refuse it over the limit, else tag its response headers."""
        limiter: RateLimiter | None = getattr(scope["app"].state.services, "limiter", None)
        if limiter is None or not is_api_path(scope["path"]):
            await next_app(scope, receive, send)
            return
        who = client_identity(scope["headers"], scope.get("client"), self.api_keys)
        decision = await limiter.hit(who)
        if not decision.allowed:
            await send_error(send, rate_limit_error(decision, limiter.period_s))
            return
        extra = [(k.encode(), v.encode()) for k, v in rate_headers(decision).items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await next_app(scope, receive, send_with_headers)
