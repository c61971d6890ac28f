"""``FallbackProvider``: order, failure hand-over, empty answers, cool-downs, error messages.

Stub providers script each call's outcome and a fake clock drives the cool-downs; one test
chains real Brave and Tavily providers over the loopback fake APIs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.protocols import SearchProvider
from retrieval.search.brave import BraveProvider
from retrieval.search.fallback import FallbackProvider
from retrieval.search.tavily import TavilyProvider
from retrieval.types import SearchHit
from tests.fakes.search_apis import API_KEY, FakeSearchApis

pytestmark = pytest.mark.anyio

Outcome = list[SearchHit] | Exception


def hits(*urls: str) -> list[SearchHit]:
    """Hits for ``urls`` (titles equal to the URLs)."""
    return [SearchHit(url=u, title=u) for u in urls]


class Stub:
    """A provider answering each call with the next scripted outcome (the last one repeats)."""

    def __init__(self, name: str, *outcomes: Outcome) -> None:
        self.name = name
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, int]] = []
        self.closed = False

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.calls.append((query, limit))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_name_and_protocol() -> None:
    chain: SearchProvider = FallbackProvider([Stub("brave", []), Stub("duckduckgo", [])])
    assert chain.name == "brave+duckduckgo"
    with pytest.raises(ValueError, match="at least one"):
        FallbackProvider([])


async def test_first_answer_wins() -> None:
    first, second = Stub("a", hits("https://a/")), Stub("b", hits("https://b/"))
    chain = FallbackProvider([first, second])
    assert await chain.search("q", limit=3) == hits("https://a/")
    assert first.calls == [("q", 3)]
    assert second.calls == []


async def test_failure_hands_over_to_the_next() -> None:
    first = Stub("a", SearchUnavailable("A answered HTTP 500"))
    second = Stub("b", hits("https://b/"))
    chain = FallbackProvider([first, second])
    assert await chain.search("q", limit=3) == hits("https://b/")
    assert await chain.search("q", limit=3) == hits("https://b/")
    # A plain failure starts no cool-down: the first provider is asked every time.
    assert len(first.calls) == 2


async def test_an_empty_answer_is_returned() -> None:
    first, second = Stub("a", []), Stub("b", hits("https://b/"))
    chain = FallbackProvider([first, second])
    assert await chain.search("q", limit=3) == []
    assert second.calls == []


async def test_skip_empty_moves_on_and_returns_empty_only_if_all_are() -> None:
    first, second = Stub("a", []), Stub("b", hits("https://b/"))
    assert await FallbackProvider([first, second], skip_empty=True).search("q", limit=3) == hits(
        "https://b/"
    )
    chain = FallbackProvider(
        [Stub("a", []), Stub("b", SearchUnavailable("down")), Stub("c", [])], skip_empty=True
    )
    assert await chain.search("q", limit=3) == []


async def test_other_exceptions_are_bugs_and_propagate() -> None:
    second = Stub("b", hits("https://b/"))
    chain = FallbackProvider([Stub("a", RuntimeError("bug")), second])
    with pytest.raises(RuntimeError, match="bug"):
        await chain.search("q", limit=3)
    assert second.calls == []


async def test_all_fail_lists_every_failure() -> None:
    chain = FallbackProvider(
        [
            Stub("brave", SearchRateLimited("Brave is rate-limiting", retry_after=5)),
            Stub("tavily", SearchUnavailable("Tavily rejected the API key (HTTP 401)")),
        ]
    )
    with pytest.raises(SearchUnavailable) as info:
        await chain.search("q", limit=3)
    assert type(info.value) is SearchUnavailable
    assert str(info.value) == (
        "every search provider failed: brave: Brave is rate-limiting; "
        "tavily: Tavily rejected the API key (HTTP 401)"
    )


async def test_all_rate_limited_is_rate_limited_with_the_shortest_wait() -> None:
    chain = FallbackProvider(
        [
            Stub("a", SearchRateLimited("A slow down", retry_after=40)),
            Stub("b", SearchRateLimited("B slow down", retry_after=None)),
            Stub("c", SearchRateLimited("C slow down", retry_after=12)),
        ]
    )
    with pytest.raises(SearchRateLimited) as info:
        await chain.search("q", limit=3)
    assert info.value.retry_after == 12


async def test_rate_limited_provider_cools_down_for_retry_after() -> None:
    clock = Clock()
    limited = Stub("a", SearchRateLimited("A slow down", retry_after=20), hits("https://a/"))
    backup = Stub("b", hits("https://b/"))
    chain = FallbackProvider([limited, backup], clock=clock)
    assert await chain.search("q", limit=3) == hits("https://b/")
    assert chain.cooling_down() == {"a": 20.0}
    clock.now += 19
    assert await chain.search("q", limit=3) == hits("https://b/")
    assert len(limited.calls) == 1
    clock.now += 1.5
    assert chain.cooling_down() == {}
    assert await chain.search("q", limit=3) == hits("https://a/")
    assert len(limited.calls) == 2


@pytest.mark.parametrize(
    ("retry_after", "cooldown"), [(None, 30.0), (10_000.0, 900.0), (0.0, None), (2.5, 2.5)]
)
async def test_cooldown_defaults_and_cap(retry_after: float | None, cooldown: float | None) -> None:
    clock = Clock()
    chain = FallbackProvider(
        [Stub("a", SearchRateLimited("x", retry_after=retry_after)), Stub("b", [])], clock=clock
    )
    await chain.search("q", limit=3)
    assert chain.cooling_down().get("a") == cooldown


async def test_every_provider_cooling_down_fails_fast() -> None:
    clock = Clock()
    a = Stub("a", SearchRateLimited("A slow down", retry_after=60))
    b = Stub("b", SearchRateLimited("B slow down", retry_after=30))
    chain = FallbackProvider([a, b], clock=clock)
    with pytest.raises(SearchRateLimited):
        await chain.search("q", limit=3)
    clock.now += 10
    with pytest.raises(SearchRateLimited) as info:
        await chain.search("q", limit=3)
    assert (len(a.calls), len(b.calls)) == (1, 1)
    assert info.value.retry_after == 20
    assert str(info.value) == (
        "every search provider failed: a: rate-limited, skipped for another 50s; "
        "b: rate-limited, skipped for another 20s"
    )


async def test_cooldown_is_per_position_not_per_name() -> None:
    clock = Clock()
    first = Stub("brave", SearchRateLimited("slow down", retry_after=60))
    second = Stub("brave", hits("https://second/"))
    chain = FallbackProvider([first, second], clock=clock)
    assert await chain.search("q", limit=3) == hits("https://second/")
    assert await chain.search("q", limit=3) == hits("https://second/")
    assert (len(first.calls), len(second.calls)) == (1, 2)


async def test_aclose_closes_every_provider() -> None:
    class NoClose:
        name = "plain"

        async def search(self, query: str, *, limit: int) -> list[SearchHit]:
            return []

    a, b = Stub("a", []), Stub("b", [])
    await FallbackProvider([a, NoClose(), b]).aclose()
    assert a.closed and b.closed


@pytest.fixture(scope="module")
def served() -> Iterator[FakeSearchApis]:
    """The loopback fake APIs, once for this module."""
    with FakeSearchApis() as fake:
        yield fake


async def test_real_chain_over_loopback(served: FakeSearchApis) -> None:
    served.reset()
    rejected = BraveProvider("wrong-key", base_url=served.base_url_for("brave"))
    working = TavilyProvider(API_KEY, base_url=served.base_url_for("tavily"))
    chain = FallbackProvider([rejected, working])
    try:
        found = await chain.search("Eiffel tower", limit=2)
    finally:
        await chain.aclose()
    assert [h.engine for h in found] == ["tavily", "tavily"]
    assert [r["api"] for r in served.requests] == ["brave", "tavily"]
