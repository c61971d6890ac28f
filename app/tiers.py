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
    rounds: int = 1
    followup_queries: int = 0
    followup_pages: int = 0
    # Ask the upstream (when one is configured) for extra search queries.
    llm_queries: int = 0

    def budget(self) -> dict[str, float]:
        """The budgets as shown by ``GET /v1/models``."""
        return {
            "queries": self.max_queries,
            "search_results": self.max_hits,
            "pages": self.max_pages,
            "passages": self.max_passages,
            "fetch_deadline_s": self.fetch_deadline_s,
            "rounds": self.rounds,
            "followup_queries": self.followup_queries,
            "followup_pages": self.followup_pages,
            "llm_queries": self.llm_queries,
        }


TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier(
            name="speed",
            description="Fastest: one round, the 4 best pages.",
            max_queries=2,
            max_hits=10,
            max_pages=4,
            max_passages=10,
            fetch_deadline_s=3.0,
        ),
        Tier(
            name="lite",
            description="One round, the 6 best pages.",
            max_queries=3,
            max_hits=10,
            max_pages=6,
            max_passages=14,
            fetch_deadline_s=5.0,
        ),
        Tier(
            name="base",
            description="The default: 10 pages, then a follow-up round for what they name.",
            max_queries=3,
            max_hits=20,
            max_pages=10,
            max_passages=20,
            fetch_deadline_s=6.0,
            rounds=2,
            followup_queries=2,
            followup_pages=4,
        ),
        Tier(
            name="core",
            description="Deepest: 12 pages, then a wider follow-up round (multi-hop questions).",
            max_queries=5,
            max_hits=20,
            max_pages=12,
            max_passages=24,
            fetch_deadline_s=8.0,
            rounds=2,
            followup_queries=3,
            followup_pages=6,
            llm_queries=2,
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
