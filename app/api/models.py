"""``GET /v1/models``: the research tiers, with their budgets."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State

from app.openai_types import ModelCard, ModelList
from app.services import Services
from app.tiers import TIERS

# Fixed so the listing is stable across restarts (2026-01-01T00:00:00Z).
_CREATED = 1767225600


@get(["/v1/models", "/v1beta/models"])
async def list_models(state: State) -> ModelList:
    """List every tier as a model, with the upstream model that answers for it."""
    services: Services = state.services
    upstream = services.upstream
    return ModelList(
        data=[
            ModelCard(
                id=t.name,
                created=_CREATED,
                owned_by="footnote",
                description=t.description,
                budget=t.budget(),
                upstream_model=upstream.model_for(t.name) if upstream is not None else None,
            )
            for t in TIERS.values()
        ]
    )
