"""Research tiers, exposed as models: each is a budget of search and reading."""

from __future__ import annotations

import msgspec

from app.errors import NO_RETRY, ApiError


class Tier(msgspec.Struct, frozen=True, kw_only=True):
    """The budgets of one tier."""

    name: str
    description: str
    max_queries: int
    max_hits: int
    max_pages: int
    max_passages: int
    fetch_deadline_s: float

    def budget(self) -> dict[str, float]:
        """The budgets as shown by ``GET /v1/models``."""
        return {
            "queries": self.max_queries,
            "search_results": self.max_hits,
            "pages": self.max_pages,
            "passages": self.max_passages,
            "fetch_deadline_s": self.fetch_deadline_s,
        }


TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier(
            name="speed",
            max_queries=2,
            description="Fastest: reads the 3 best pages.",
            max_hits=5,
            max_pages=3,
            max_passages=6,
            fetch_deadline_s=3.0,
        ),
        Tier(
            name="lite",
            max_queries=2,
            description="Reads the 5 best pages.",
            max_hits=8,
            max_pages=5,
            max_passages=8,
            fetch_deadline_s=5.0,
        ),
        Tier(
            name="base",
            max_queries=3,
            description="The default: reads the 8 best pages.",
            max_hits=10,
            max_pages=8,
            max_passages=12,
            fetch_deadline_s=8.0,
        ),
        Tier(
            name="core",
            max_queries=5,
            description="Broadest: reads up to 12 pages.",
            max_hits=15,
            max_pages=12,
            max_passages=16,
            fetch_deadline_s=10.0,
        ),
    )
}

# Names clients already send; they run the default tier.
ALIASES = {"footnote": "base"}


def resolve_tier(model: str) -> Tier:
    """The tier a ``model`` names; 404 ``model_not_found`` for anything else."""
    name = ALIASES.get(model, model)
    tier = TIERS.get(name)
    if tier is None:
        known = ", ".join(TIERS)
        raise ApiError(
            404,
            f"The model '{model}' does not exist. Available models: {known}.",
            param="model",
            code="model_not_found",
            headers=NO_RETRY,
        )
    return tier
