"""The Redis backends against a real redis-server: page cache, rate limits, and outages."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from redis.asyncio import Redis

from app.ratelimit import MemoryLimiter, RedisLimiter
from retrieval.cache import CacheEntry, SingleFlight, encode_entry, get_or_load
from retrieval.redis_cache import Breaker, RedisCache, connect
from retrieval.types import Document
from tests.fakes.redis_server import RedisServer, free_port

DOC = Document(url="https://example.org/a", title="A page", text="Some readable text.")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = connect(redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A Redis URL whose port accepts connections and never answers (a hung Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


@pytest.mark.anyio
async def test_round_trip_shared_between_clients(client: Redis, redis_url: str) -> None:
    cache = RedisCache(client)
    assert await cache.get(DOC.url) is None
    await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=60)
    other = connect(redis_url)  # another process would have its own client: same answer
    try:
        # The key is the canonical URL: a fragment or default port does not matter.
        got = await RedisCache(other).get("https://EXAMPLE.org:443/a#top")
    finally:
        await other.aclose()
    assert got == CacheEntry(document=DOC)
    await cache.put("https://example.org/dead", CacheEntry(failure="timeout"), ttl_s=60)
    assert await cache.get("https://example.org/dead") == CacheEntry(failure="timeout")
    ttl_ms = await client.pttl(cache.key(DOC.url))
    assert 59_000 < ttl_ms <= 60_000  # the entry's TTL is Redis's expiry


@pytest.mark.anyio
async def test_expiry_and_limits(client: Redis) -> None:
    cache = RedisCache(client, max_entry_bytes=200)
    await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=0.05)
    await anyio.sleep(0.15)
    assert await cache.get(DOC.url) is None
    await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=0)  # 0 stores nothing
    big = Document(url="https://example.org/big", title="", text="x" * 500)
    await cache.put(big.url, CacheEntry(document=big), ttl_s=60)  # over max_entry_bytes
    assert await client.dbsize() == 0


@pytest.mark.anyio
async def test_garbage_is_a_miss(client: Redis) -> None:
    cache = RedisCache(client)
    await client.set(cache.key(DOC.url), b"\xc1 not msgpack")
    assert await cache.get(DOC.url) is None
    await client.set(cache.key(DOC.url), encode_entry(CacheEntry(failure="x"))[:-1])
    assert await cache.get(DOC.url) is None


@pytest.mark.anyio
async def test_get_or_load_writes_through_redis(client: Redis) -> None:
    cache = RedisCache(client)
    loads = 0

    async def load() -> Document:
        nonlocal loads
        loads += 1
        return DOC

    for flights in (SingleFlight[CacheEntry](), SingleFlight[CacheEntry]()):  # two "workers"
        entry = await get_or_load(cache, DOC.url, load, ttl_s=60, negative_ttl_s=5, flights=flights)
        assert entry.document == DOC
    assert loads == 1


@pytest.mark.anyio
@pytest.mark.parametrize("down", ["refused", "hung"])
async def test_outage_is_a_fast_miss(down: str, blackhole: str) -> None:
    url = blackhole if down == "hung" else f"redis://127.0.0.1:{free_port()}/0"
    redis = connect(url, timeout_s=0.3)
    cache = RedisCache(redis, op_timeout_s=0.3)
    try:
        t0 = time.perf_counter()
        assert await cache.get(DOC.url) is None
        await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=60)
        assert not cache.breaker.is_open  # two failures: maybe just a slow moment
        assert await cache.get(DOC.url) is None
        first = time.perf_counter() - t0
        assert cache.breaker.is_open  # three in a row: an outage
        t1 = time.perf_counter()
        for _ in range(50):  # the breaker skips Redis: no more waiting at all
            assert await cache.get(DOC.url) is None
        rest = time.perf_counter() - t1
    finally:
        await redis.aclose()
    assert first < 1.5  # three calls of at most 0.3 s each
    assert rest < 0.05


@pytest.mark.anyio
async def test_cache_recovers_when_redis_returns() -> None:
    with RedisServer() as server:
        redis = connect(server.url, timeout_s=0.3)
        cache = RedisCache(
            redis, op_timeout_s=0.3, breaker=Breaker("test", cooldown_s=0.1, threshold=1)
        )
        try:
            await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=60)
            port = server.port
            server.stop()
            assert await cache.get(DOC.url) is None  # down: a miss, not an error
            assert cache.breaker.is_open
            # A new server on the same port (empty: no persistence).
            with RedisServer(port=port):
                await anyio.sleep(0.15)
                await cache.put(DOC.url, CacheEntry(document=DOC), ttl_s=60)
                assert await cache.get(DOC.url) == CacheEntry(document=DOC)
                assert not cache.breaker.is_open
        finally:
            await redis.aclose()


# --- rate limits ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_redis_limiter_matches_memory(client: Redis) -> None:
    shared = RedisLimiter(client, 5, 60.0)
    memory = MemoryLimiter(5, 60.0)
    for limiter in (shared, memory):
        decisions = [await limiter.hit("k") for _ in range(7)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False, False]
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
        assert decisions[0].reset_s == pytest.approx(12.0, abs=0.05)
        assert decisions[5].retry_after_s == pytest.approx(12.0, abs=0.05)
    assert not shared.breaker.is_open  # the answers came from Redis, not the fallback
    assert len(shared.fallback) == 0


@pytest.mark.anyio
async def test_redis_limiter_is_shared_and_atomic(client: Redis, redis_url: str) -> None:
    other = connect(redis_url)
    try:
        a, b = RedisLimiter(client, 20, 60.0), RedisLimiter(other, 20, 60.0)
        outcomes: list[bool] = []

        async def hammer(limiter: RedisLimiter) -> None:
            for _ in range(15):
                outcomes.append((await limiter.hit("same")).allowed)

        async with anyio.create_task_group() as tg:  # 30 concurrent hits from two "replicas"
            for limiter in (a, b, a, b):
                tg.start_soon(hammer, limiter)
        assert outcomes.count(True) == 20
        assert outcomes.count(False) == 40
        key_ttl = await client.pttl("footnote:rate:same")
        assert 0 < key_ttl <= 60_000  # the state expires once the allowance is full again
    finally:
        await other.aclose()


@pytest.mark.anyio
async def test_limiter_refills_in_redis(client: Redis) -> None:
    limiter = RedisLimiter(client, 2, 0.2)  # one request back every 100 ms
    assert (await limiter.hit("r")).allowed
    assert (await limiter.hit("r")).allowed
    refused = await limiter.hit("r")
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.1
    await anyio.sleep(refused.retry_after_s + 0.02)
    assert (await limiter.hit("r")).allowed


@pytest.mark.anyio
@pytest.mark.parametrize("down", ["refused", "hung"])
async def test_limiter_fails_soft_to_memory(down: str, blackhole: str) -> None:
    url = blackhole if down == "hung" else f"redis://127.0.0.1:{free_port()}/0"
    redis = connect(url, timeout_s=0.3)
    limiter = RedisLimiter(redis, 3, 60.0, op_timeout_s=0.3)
    try:
        t0 = time.perf_counter()
        decisions = [await limiter.hit("c") for _ in range(5)]
        elapsed = time.perf_counter() - t0
    finally:
        await redis.aclose()
    # Still limited (per process, by the fallback), and only the first three calls waited.
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert limiter.breaker.is_open
    assert elapsed < 1.5
