"""The document cache: LRU/TTL bounds, msgpack round trips, negative caching and single-flight."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from retrieval.cache import (
    NO_TEXT,
    CacheEntry,
    DocumentCache,
    MemoryCache,
    SingleFlight,
    cache_key,
    decode_entry,
    encode_entry,
    get_or_load,
)
from retrieval.errors import FetchError
from retrieval.types import Document
from retrieval.urls import canonical_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def doc(url: str = "https://example.org/a", text: str = "Some text.") -> Document:
    return Document(url=url, title="A title", text=text, published="2024-01-02")


def hit(url: str = "https://example.org/a", text: str = "Some text.") -> CacheEntry:
    return CacheEntry(document=doc(url, text))


def test_an_entry_holds_exactly_one_of_document_and_failure() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CacheEntry()
    with pytest.raises(ValueError, match="exactly one"):
        CacheEntry(document=doc(), failure="timeout")
    assert CacheEntry(failure="timeout").document is None


def test_entries_round_trip_through_msgpack() -> None:
    for entry in (hit(text="Caf\u00e9 \u2014 \u00fcber.\n\nSecond."), CacheEntry(failure="dns")):
        data = encode_entry(entry)
        assert isinstance(data, bytes)
        assert decode_entry(data) == entry


def test_decoding_rejects_garbage_and_invalid_entries() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_entry(b"\xc1 not msgpack")
    both = msgspec.msgpack.encode({"document": msgspec.to_builtins(doc()), "failure": "x"})
    with pytest.raises(msgspec.ValidationError, match="exactly one"):
        decode_entry(both)


@pytest.mark.anyio
async def test_memory_cache_keys_by_canonical_url() -> None:
    cache = MemoryCache()
    await cache.put("https://Example.org:443/a/#top", hit(), ttl_s=60)
    assert await cache.get("https://example.org/a") == hit()
    assert cache_key("https://Example.org:443/a/") == "https://example.org/a"
    assert cache_key("http://bad:port/") == "http://bad:port/"
    assert canonical_url("HTTP://Example.COM:80/a/b/#frag") == "http://example.com/a/b"


@pytest.mark.anyio
async def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.put("https://e.org/ok", hit(), ttl_s=60)
    await cache.put("https://e.org/dead", CacheEntry(failure="timeout"), ttl_s=5)
    clock.now += 5
    assert await cache.get("https://e.org/dead") is None
    assert await cache.get("https://e.org/ok") == hit()
    clock.now += 55
    assert await cache.get("https://e.org/ok") is None
    assert len(cache) == 0
    assert cache.chars == 0


@pytest.mark.anyio
async def test_least_recently_used_entries_go_first() -> None:
    cache = MemoryCache(max_entries=3)
    for name in "abc":
        await cache.put(f"https://e.org/{name}", hit(), ttl_s=60)
    assert await cache.get("https://e.org/a") is not None  # a is now the most recent
    await cache.put("https://e.org/d", hit(), ttl_s=60)
    assert await cache.get("https://e.org/b") is None
    for name in "acd":
        assert await cache.get(f"https://e.org/{name}") is not None
    assert len(cache) == 3


@pytest.mark.anyio
async def test_total_characters_are_bounded() -> None:
    cache = MemoryCache(max_chars=3000)
    for i in range(5):
        await cache.put(f"https://e.org/{i}", hit(text="x" * 900), ttl_s=60)
    assert len(cache) == 3
    assert cache.chars <= 3000
    assert await cache.get("https://e.org/0") is None
    assert await cache.get("https://e.org/4") is not None
    # One entry larger than the whole budget is refused instead of flushing the rest.
    await cache.put("https://e.org/huge", hit(text="x" * 5000), ttl_s=60)
    assert await cache.get("https://e.org/huge") is None
    assert len(cache) == 3


@pytest.mark.anyio
async def test_replacing_an_entry_keeps_the_character_count_right() -> None:
    cache = MemoryCache()
    await cache.put("https://e.org/a", hit(text="x" * 100), ttl_s=60)
    await cache.put("https://e.org/a", CacheEntry(failure="dns"), ttl_s=60)
    assert len(cache) == 1
    assert cache.chars == len("dns") + len("https://e.org/a")
    await cache.put("https://e.org/a", hit(), ttl_s=0)
    assert len(cache) == 0
    assert cache.chars == 0


def test_memory_cache_rejects_empty_bounds() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryCache(max_entries=0)


class CountingLoader:
    """A loader that returns, raises or waits as told, counting its calls."""

    def __init__(self, result: Document | BaseException | None) -> None:
        self.result = result
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> Document | None:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


async def load(
    cache: DocumentCache, loader: CountingLoader, flights: SingleFlight[CacheEntry], url: str
) -> CacheEntry:
    return await get_or_load(cache, url, loader, ttl_s=60, negative_ttl_s=5, flights=flights)


@pytest.mark.anyio
async def test_a_loaded_document_is_cached() -> None:
    cache, flights = MemoryCache(), SingleFlight[CacheEntry]()
    loader = CountingLoader(doc())
    first = await load(cache, loader, flights, "https://example.org/a")
    second = await load(cache, loader, flights, "https://EXAMPLE.org/a/")
    assert first == second == hit()
    assert loader.calls == 1
    assert len(flights) == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("result", "reason"),
    [(FetchError("timeout", "too slow"), "timeout"), (None, NO_TEXT), (doc(text=" \n "), NO_TEXT)],
)
async def test_failures_are_cached_for_the_negative_ttl(
    result: Document | BaseException | None, reason: str
) -> None:
    clock = FakeClock()
    cache, flights = MemoryCache(clock=clock), SingleFlight[CacheEntry]()
    loader = CountingLoader(result)
    assert await load(cache, loader, flights, "https://e.org/dead") == CacheEntry(failure=reason)
    assert await load(cache, loader, flights, "https://e.org/dead") == CacheEntry(failure=reason)
    assert loader.calls == 1
    clock.now += 5
    await load(cache, loader, flights, "https://e.org/dead")
    assert loader.calls == 2


@pytest.mark.anyio
async def test_other_exceptions_propagate_and_are_not_cached() -> None:
    cache, flights = MemoryCache(), SingleFlight[CacheEntry]()
    loader = CountingLoader(RuntimeError("extractor crashed"))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="extractor crashed"):
            await load(cache, loader, flights, "https://e.org/a")
    assert loader.calls == 2
    assert len(cache) == 0


@pytest.mark.anyio
async def test_concurrent_requests_share_one_load() -> None:
    cache, flights = MemoryCache(), SingleFlight[CacheEntry]()
    loader = CountingLoader(doc())
    loader.release.clear()
    urls = ["https://example.org/a", "https://example.org/a/", "HTTPS://example.org/a#x"] * 4
    tasks = [asyncio.create_task(load(cache, loader, flights, u)) for u in urls]
    await loader.started.wait()
    assert len(flights) == 1
    loader.release.set()
    results = await asyncio.gather(*tasks)
    assert results == [hit()] * len(urls)
    assert loader.calls == 1
    assert len(flights) == 0


@pytest.mark.anyio
async def test_one_caller_giving_up_does_not_cancel_the_load_for_others() -> None:
    cache, flights = MemoryCache(), SingleFlight[CacheEntry]()
    loader = CountingLoader(doc())
    loader.release.clear()
    leader = asyncio.create_task(load(cache, loader, flights, "https://example.org/a"))
    await loader.started.wait()
    follower = asyncio.create_task(load(cache, loader, flights, "https://example.org/a"))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    loader.release.set()
    assert await follower == hit()
    assert leader.cancelled()
    assert not loader.cancelled
    assert await cache.get("https://example.org/a") == hit()


@pytest.mark.anyio
async def test_the_load_is_cancelled_when_every_caller_has_gone() -> None:
    cache, flights = MemoryCache(), SingleFlight[CacheEntry]()
    loader = CountingLoader(doc())
    loader.release.clear()
    tasks = [asyncio.create_task(load(cache, loader, flights, "https://e.org/a")) for _ in "ab"]
    await loader.started.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(flights) == 0
    for _ in range(3):
        await asyncio.sleep(0)
    assert loader.cancelled
    # The next request starts a fresh load rather than joining the cancelled one.
    loader.release.set()
    assert await load(cache, loader, flights, "https://e.org/a") == hit()
    assert loader.calls == 2


class BrokenCache:
    """A backend that is down: every call raises."""

    async def get(self, url: str) -> CacheEntry | None:
        raise ConnectionError("cache down")

    async def put(self, url: str, entry: CacheEntry, ttl_s: float) -> None:
        raise ConnectionError("cache down")


@pytest.mark.anyio
async def test_a_failing_backend_degrades_to_no_cache(caplog: pytest.LogCaptureFixture) -> None:
    flights = SingleFlight[CacheEntry]()
    loader = CountingLoader(doc())
    with caplog.at_level(logging.WARNING, logger="footnote.cache"):
        assert await load(BrokenCache(), loader, flights, "https://e.org/a") == hit()
    assert [r.getMessage() for r in caplog.records] == [
        "cache read failed for https://e.org/a",
        "cache write failed for https://e.org/a",
    ]
