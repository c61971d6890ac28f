"""``FallbackProvider``: several search providers tried in order, the first answer wins.

A provider that raises ``SearchUnavailable`` (rate limits included) hands the query to the
next one. An empty result list is an answer, not a failure, and is returned as it is: moving
on would spend another provider's quota to second-guess "nothing matched". Pass
``skip_empty=True`` when a provider is known to answer "nothing" when it is really blocked
(``ddgs`` does); the first non-empty list then wins, and ``[]`` is returned only if every
provider answered empty.

A provider that raised ``SearchRateLimited`` is skipped for a cool-down: its ``retry_after``
when it said one, else ``cooldown_s``, at most ``max_cooldown_s``; the clock is injectable
for tests. When every provider fails, one error lists each provider's failure; it is a
``SearchRateLimited`` (with the shortest wait) when every failure was a rate limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.protocols import SearchProvider
from retrieval.types import SearchHit


class FallbackProvider:
    """``SearchProvider`` over an ordered chain of providers (see the module docstring)."""

    def __init__(
        self,
        providers: Sequence[SearchProvider],
        *,
        skip_empty: bool = False,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Chain ``providers`` in the order given; ``name`` is their names joined by ``+``."""
        if not providers:
            raise ValueError("FallbackProvider needs at least one provider")
        if cooldown_s < 0 or max_cooldown_s < 0:
            raise ValueError("cool-down durations must not be negative")
        self.providers = tuple(providers)
        self.name = "+".join(p.name for p in self.providers)
        self.skip_empty = skip_empty
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        # Keyed by position, not name: a chain may hold two providers of the same kind.
        self._resume_at: dict[int, float] = {}

    def cooling_down(self) -> dict[str, float]:
        """Seconds left of each provider's cool-down (only providers being skipped now)."""
        now = self._clock()
        return {
            self.providers[i].name: until - now
            for i, until in sorted(self._resume_at.items())
            if until > now
        }

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return the first provider's answer that is not a failure (see the module doc)."""
        failures: list[str] = []
        waits: list[float | None] = []
        all_rate_limited = True
        answered_empty = False
        for index, provider in enumerate(self.providers):
            left = self._cooldown_left(index)
            if left is not None:
                failures.append(f"{provider.name}: rate-limited, skipped for another {left:.0f}s")
                waits.append(left)
                continue
            try:
                hits = await provider.search(query, limit=limit)
            except SearchRateLimited as exc:
                self._start_cooldown(index, exc.retry_after)
                failures.append(f"{provider.name}: {exc}")
                waits.append(exc.retry_after)
                continue
            except SearchUnavailable as exc:
                failures.append(f"{provider.name}: {exc}")
                all_rate_limited = False
                continue
            if hits or not self.skip_empty:
                return hits
            answered_empty = True
        if answered_empty:
            return []
        message = "every search provider failed: " + "; ".join(failures)
        if all_rate_limited:
            known = [w for w in waits if w is not None]
            raise SearchRateLimited(message, retry_after=min(known) if known else None)
        raise SearchUnavailable(message)

    def _cooldown_left(self, index: int) -> float | None:
        until = self._resume_at.get(index)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._resume_at[index]
            return None
        return left

    def _start_cooldown(self, index: int, retry_after: float | None) -> None:
        seconds = self.cooldown_s if retry_after is None else retry_after
        seconds = min(max(seconds, 0.0), self.max_cooldown_s)
        if seconds > 0:
            self._resume_at[index] = self._clock() + seconds

    async def ready(self) -> None:
        """Ready when any provider of the chain is; one without a probe counts as ready."""
        await ready_any(self.providers, "no search provider is ready")

    async def aclose(self) -> None:
        """Close every provider that can be closed, even if one of them fails to."""
        errors: list[BaseException] = []
        for provider in self.providers:
            aclose = getattr(provider, "aclose", None)
            if aclose is None:
                continue
            try:
                await aclose()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


async def ready_any(providers: Sequence[SearchProvider], failure: str) -> None:
    """Return once one of ``providers`` is ready (one without a ``ready`` probe counts).

    ``SearchUnavailable`` (``failure``, then each provider's reason) when none is.
    """
    failures: list[str] = []
    for provider in providers:
        probe = getattr(provider, "ready", None)
        if probe is None:
            return
        try:
            await probe()
        except SearchUnavailable as exc:
            failures.append(f"{provider.name}: {exc}")
            continue
        return
    raise SearchUnavailable(f"{failure}: " + "; ".join(failures))
