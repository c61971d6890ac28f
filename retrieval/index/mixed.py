"""``MixedProvider``: the web and the local index searched together, their hits interleaved.

Both are asked for ``limit`` hits at once; the answer alternates between them (the index
first), skipping repeated URLs, so neither side can crowd the other out of the pages read.
When one side fails, the other's hits are the answer; only when both fail does the search
fail (with both reasons).
"""

from __future__ import annotations

import anyio

from retrieval.errors import SearchUnavailable
from retrieval.protocols import SearchProvider
from retrieval.search.fallback import ready_any
from retrieval.types import SearchHit


def interleave(first: list[SearchHit], second: list[SearchHit], limit: int) -> list[SearchHit]:
    """Alternate ``first`` and ``second`` (first leading), without repeated URLs."""
    out: list[SearchHit] = []
    seen: set[str] = set()
    for i in range(max(len(first), len(second))):
        for hits in (first, second):
            if i < len(hits) and hits[i].url not in seen:
                seen.add(hits[i].url)
                out.append(hits[i])
    return out[:limit]


class MixedProvider:
    """``SearchProvider`` over a local index and a web provider at once (see module doc)."""

    def __init__(self, local: SearchProvider, web: SearchProvider) -> None:
        """Search ``local`` and ``web`` together; ``name`` is ``web+local``."""
        self.local = local
        self.web = web
        self.name = f"{web.name}+{local.name}"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Both sides' hits interleaved; ``SearchUnavailable`` only if both fail."""
        results: dict[str, list[SearchHit] | SearchUnavailable] = {}

        async def one(key: str, provider: SearchProvider) -> None:
            try:
                results[key] = await provider.search(query, limit=limit)
            except SearchUnavailable as exc:
                results[key] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "local", self.local)
            tg.start_soon(one, "web", self.web)
        local, web = results["local"], results["web"]
        if isinstance(local, SearchUnavailable) and isinstance(web, SearchUnavailable):
            raise SearchUnavailable(f"local index: {local}; web: {web}")
        return interleave(
            [] if isinstance(local, SearchUnavailable) else local,
            [] if isinstance(web, SearchUnavailable) else web,
            limit,
        )

    async def ready(self) -> None:
        """Ready when either side is (a side without a probe counts as ready)."""
        await ready_any((self.local, self.web), "neither search side is ready")

    async def aclose(self) -> None:
        """Nothing of its own: the two providers are closed by whoever built them."""
