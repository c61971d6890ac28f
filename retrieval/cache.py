"""The fetch-and-extract cache: read pages are reused across requests, dead ones are not retried.

``DocumentCache`` is the seam; ``MemoryCache`` is the in-process backend (LRU with a TTL per
entry, bounded by entry count and by total characters). A shared backend (Redis) is one more
class: it stores ``encode_entry(entry)`` under ``cache_key(url)`` with the TTL and reads it
back with ``decode_entry``. ``get_or_load`` puts the cache in front of a loader and makes
concurrent requests for one URL share a single load (``SingleFlight``, in-process).

Failures are cached too ("negative caching"), with a shorter TTL chosen by the caller, so a
page that times out or answers 404 does not cost every request a full fetch deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import msgspec

from retrieval.errors import FetchError
from retrieval.types import Document
from retrieval.urls import canonical_url

log = logging.getLogger("footnote.cache")

T = TypeVar("T")

# Failure reason cached when a page was fetched but held no readable text.
NO_TEXT = "no_text"


class CacheEntry(msgspec.Struct, frozen=True):
    """What one URL gave last time: a ``document``, or the ``failure`` reason, never both."""

    document: Document | None = None
    failure: str | None = None

    def __post_init__(self) -> None:
        if (self.document is None) == (self.failure is None):
            raise ValueError("a CacheEntry holds exactly one of document and failure")

    @property
    def size(self) -> int:
        """Characters held, the unit of ``MemoryCache.max_chars``."""
        doc = self.document
        if doc is None:
            return len(self.failure or "")
        return len(doc.url) + len(doc.title) + len(doc.text) + len(doc.published or "")


class DocumentCache(Protocol):
    """Stores ``CacheEntry`` values by URL; implementations key by ``cache_key(url)``."""

    async def get(self, url: str) -> CacheEntry | None:
        """Return the live entry for ``url``, or ``None`` when absent or expired."""
        ...

    async def put(self, url: str, entry: CacheEntry, ttl_s: float) -> None:
        """Store ``entry`` for ``url`` for ``ttl_s`` seconds (``ttl_s <= 0`` stores nothing)."""
        ...


def cache_key(url: str) -> str:
    """The key of ``url``: its canonical form (the URL as given when it cannot be parsed)."""
    try:
        return canonical_url(url)
    except ValueError:  # e.g. a non-numeric port; such a URL never fetches anyway
        return url.strip()


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(CacheEntry)


def encode_entry(entry: CacheEntry) -> bytes:
    """Serialise ``entry`` as MessagePack (for shared backends such as Redis)."""
    return _ENCODER.encode(entry)


def decode_entry(data: bytes) -> CacheEntry:
    """Read an entry written by ``encode_entry``.

    Raises ``msgspec.DecodeError`` (``msgspec.ValidationError`` included) on bytes that are
    not a valid entry; a backend should treat that as a miss.
    """
    return _DECODER.decode(data)


class _Slot(msgspec.Struct):
    entry: CacheEntry
    expires: float
    size: int


class MemoryCache:
    """In-process ``DocumentCache``: LRU order, a TTL per entry, bounded entries and characters.

    Every operation is O(1) (amortised) and runs without awaiting, so concurrent tasks on
    one event loop can never observe it half-updated. It is not meant to be shared between
    threads. Expired entries are dropped when read or when they reach the LRU end.
    """

    def __init__(
        self,
        max_entries: int = 2048,
        *,
        max_chars: int = 64_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_chars < 1:
            raise ValueError("max_entries and max_chars must be positive")
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def chars(self) -> int:
        """Characters currently held (keys included)."""
        return self._chars

    async def get(self, url: str) -> CacheEntry | None:
        """Return the live entry for ``url`` and mark it recently used."""
        key = cache_key(url)
        slot = self._slots.get(key)
        if slot is None:
            return None
        if slot.expires <= self._clock():
            self._drop(key)
            return None
        self._slots.move_to_end(key)
        return slot.entry

    async def put(self, url: str, entry: CacheEntry, ttl_s: float) -> None:
        """Store ``entry`` for ``ttl_s`` seconds, evicting least recently used entries."""
        key = cache_key(url)
        if key in self._slots:
            self._drop(key)
        size = entry.size + len(key)
        # An entry larger than the whole budget would only flush everything else.
        if ttl_s <= 0 or size > self.max_chars:
            return
        self._slots[key] = _Slot(entry, self._clock() + ttl_s, size)
        self._chars += size
        while len(self._slots) > self.max_entries or self._chars > self.max_chars:
            self._drop(next(iter(self._slots)))

    def _drop(self, key: str) -> None:
        self._chars -= self._slots.pop(key).size


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Runs at most one load per key at a time; concurrent callers share its result.

    The load runs in its own task, so one caller's cancellation (its request deadline) does
    not cancel it for the others; it is cancelled only when every caller has gone. An
    exception from the load reaches every caller and is not remembered.
    """

    def __init__(self) -> None:
        self._flights: dict[str, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """Return the result of ``load()``, or of the load already running for ``key``."""
        flight = self._flights.get(key)
        if flight is None:
            flight = self._start(key, load)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                self._forget(key, flight)
                flight.task.cancel()

    def _start(self, key: str, load: Callable[[], Awaitable[T]]) -> _Flight[T]:
        async def call() -> T:
            return await load()

        flight = _Flight(asyncio.create_task(call(), name=f"single-flight {key}"))
        self._flights[key] = flight
        flight.task.add_done_callback(lambda _: self._forget(key, flight))
        return flight

    def _forget(self, key: str, flight: _Flight[T]) -> None:
        # A newer flight for the same key may already be registered: leave that one alone.
        if self._flights.get(key) is flight:
            del self._flights[key]


async def get_or_load(
    cache: DocumentCache,
    url: str,
    loader: Callable[[], Awaitable[Document | None]],
    *,
    ttl_s: float,
    negative_ttl_s: float,
    flights: SingleFlight[CacheEntry],
) -> CacheEntry:
    """Return the cached entry for ``url``, or load it once and cache the outcome.

    ``loader`` fetches and extracts the page. A document with text is cached for ``ttl_s``;
    ``None`` or an empty document becomes the failure ``"no_text"`` and a ``FetchError`` its
    ``reason``, both cached for ``negative_ttl_s``. Any other exception (a crashed extractor,
    say) propagates uncached. Concurrent calls for one URL share a single ``loader`` call.
    A failing cache backend is logged and treated as a miss: it must never fail a request.
    """
    key = cache_key(url)
    try:
        cached = await cache.get(key)
    except Exception:
        log.warning("cache read failed for %s", key, exc_info=True)
        cached = None
    if cached is not None:
        return cached

    async def load() -> CacheEntry:
        try:
            doc = await loader()
        except FetchError as exc:
            entry = CacheEntry(failure=exc.reason)
        else:
            if doc is not None and doc.text.strip():
                entry = CacheEntry(document=doc)
            else:
                entry = CacheEntry(failure=NO_TEXT)
        ttl = ttl_s if entry.document is not None else negative_ttl_s
        try:
            await cache.put(key, entry, ttl)
        except Exception:
            log.warning("cache write failed for %s", key, exc_info=True)
        return entry

    return await flights.run(key, load)
