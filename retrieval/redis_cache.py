"""Redis as the shared backend of the fetch-and-extract cache (``FOOTNOTE_REDIS_URL``).

``RedisCache`` implements the ``DocumentCache`` seam of ``retrieval.cache``: an entry is
stored as ``encode_entry(entry)`` (MessagePack) under ``footnote:page:<sha256 of the
canonical URL>`` with the entry's TTL as a Redis expiry, so every worker process and every
replica pointed at one Redis reads the pages any of them has read.

Redis is an optimisation here, never a dependency of an answer. Every operation runs under
its own short deadline (``op_timeout_s``), and any failure (refused, timed out, garbage
bytes) is a miss. After a few failures in a row a ``Breaker`` skips Redis for ``cooldown_s``
seconds, so an outage costs a timeout per cool-down, not one per page of every request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import anyio
import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from retrieval.cache import CacheEntry, cache_key, decode_entry, encode_entry

log = logging.getLogger("footnote.redis")

PAGE_PREFIX = "footnote:page:"
# Errors that mean "Redis is not answering properly": treated as a miss, never raised.
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


def connect(url: str, *, timeout_s: float = 1.0, max_connections: int = 64) -> Redis:
    """A ``redis.asyncio`` client for ``url`` that fails fast instead of waiting.

    Connect and socket timeouts are ``timeout_s``; a failed command is retried once at once
    (a pooled connection left stale by a Redis restart reconnects) and callers bound the
    whole call with their own deadline. The pool is bounded, so a stalled Redis cannot pile
    up sockets. No connection is made until the first command.
    """
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        max_connections=max_connections,
        health_check_interval=0,
    )
    return client


def page_key(url: str, prefix: str = PAGE_PREFIX) -> str:
    """The Redis key of ``url``: prefix + SHA-256 of its canonical form (bounded length)."""
    return prefix + hashlib.sha256(cache_key(url).encode()).hexdigest()


class Breaker:
    """Skips a failing dependency for ``cooldown_s`` seconds after ``threshold`` failures in a row.

    ``allow()`` says whether to try now; ``failed(exc)`` counts a failure and opens the breaker
    at the threshold (logging once per opening, not per call); ``succeeded()`` closes it. One
    slow answer on a busy machine is not an outage; a dead Redis fails every call at once.
    """

    def __init__(
        self,
        name: str,
        cooldown_s: float = 2.0,
        *,
        threshold: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cooldown_s = cooldown_s
        self.threshold = threshold
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        """Whether calls are being skipped right now."""
        return self._open_until is not None and self._clock() < self._open_until

    def allow(self) -> bool:
        """True when the dependency should be tried (closed, or the cool-down has passed)."""
        return not self.is_open

    def failed(self, exc: BaseException) -> None:
        """Record a failure; at the threshold, skip the dependency for ``cooldown_s`` seconds."""
        self._failures += 1
        if self._failures < self.threshold:
            log.info("%s failed (%s: %s)", self.name, type(exc).__name__, exc)
            return
        if self._open_until is None:
            log.warning(
                "%s unavailable (%s: %s); degrading for %.1f s at a time",
                self.name,
                type(exc).__name__,
                exc,
                self.cooldown_s,
            )
        self._open_until = self._clock() + self.cooldown_s

    def succeeded(self) -> None:
        """Record a success: close the breaker."""
        if self._open_until is not None:
            log.info("%s available again", self.name)
        self._open_until = None
        self._failures = 0


class RedisCache:
    """A ``DocumentCache`` in Redis, shared by every process that uses the same Redis.

    ``max_entry_bytes`` bounds one stored entry (a larger one is simply not cached). A
    Redis failure is a miss (``get`` returns ``None``, ``put`` stores nothing), bounded by
    ``op_timeout_s`` and then skipped for the breaker's cool-down.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = PAGE_PREFIX,
        op_timeout_s: float = 1.0,
        max_entry_bytes: int = 4_000_000,
        breaker: Breaker | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout_s = op_timeout_s
        self._max_bytes = max_entry_bytes
        self.breaker = breaker or Breaker("redis page cache")

    def key(self, url: str) -> str:
        """The Redis key of ``url`` (``page_key`` with this cache's prefix)."""
        return page_key(url, self._prefix)

    async def get(self, url: str) -> CacheEntry | None:
        """The live entry for ``url``; ``None`` when absent, unreadable or Redis is down."""
        if not self.breaker.allow():
            return None
        try:
            with anyio.fail_after(self._timeout_s):
                data = await self._client.get(self.key(url))
        except REDIS_FAILURES as exc:
            self.breaker.failed(exc)
            return None
        self.breaker.succeeded()
        if not isinstance(data, bytes):  # absent (clients here never decode responses)
            return None
        try:
            return decode_entry(data)
        except msgspec.DecodeError:
            log.warning("unreadable cache entry for %s; treating it as a miss", url)
            return None

    async def put(self, url: str, entry: CacheEntry, ttl_s: float) -> None:
        """Store ``entry`` for ``ttl_s`` seconds (nothing when ``ttl_s <= 0`` or too large)."""
        ttl_ms = int(ttl_s * 1000)
        if ttl_ms <= 0 or not self.breaker.allow():
            return
        data = encode_entry(entry)
        if len(data) > self._max_bytes:
            return
        try:
            with anyio.fail_after(self._timeout_s):
                await self._client.set(self.key(url), data, px=ttl_ms)
        except REDIS_FAILURES as exc:
            self.breaker.failed(exc)
            return
        self.breaker.succeeded()
