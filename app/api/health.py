"""``GET /healthz`` (the process is up) and ``/corpus/...`` (pages of the bundled corpus)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from app.errors import ApiError
from app.services import Services


@get("/healthz", sync_to_thread=False, opt={"public": True})
def healthz(state: State) -> dict[str, Any]:
    """Liveness: answers as soon as the app serves requests."""
    services: Services = state.services
    return {
        "status": "ok",
        "search_provider": services.search.name,
        "upstream": services.upstream is not None,
    }


@get("/corpus/{route:path}", sync_to_thread=False, opt={"public": True})
def corpus_page(state: State, route: FromPath[str]) -> Response[bytes]:
    """Serve a page of the bundled corpus, so its citations are links that open."""
    services: Services = state.services
    html = services.bundled.page_html(route) if services.bundled is not None else None
    if html is None:
        raise ApiError(404, "No such page in the bundled corpus.", code="not_found")
    return Response(content=html, media_type="text/html; charset=utf-8")
