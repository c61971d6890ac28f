"""``GET /v1/models``: the research tiers, with their budgets."""

from __future__ import annotations

from litestar import get

from app.openai_types import ModelCard, ModelList
from app.tiers import TIERS

# Fixed so the listing is stable across restarts (2026-01-01T00:00:00Z).
_CREATED = 1767225600


@get(["/v1/models", "/v1beta/models"])
async def list_models() -> ModelList:
    """List every tier as a model."""
    return ModelList(
        data=[
            ModelCard(
                id=t.name,
                created=_CREATED,
                owned_by="footnote",
                description=t.description,
                budget=t.budget(),
            )
            for t in TIERS.values()
        ]
    )
