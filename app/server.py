"""``create_app(settings, services)``: the one way to build the Litestar application."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig

from app.api.chat import chat_completions
from app.api.health import corpus_page, healthz
from app.api.models import list_models
from app.errors import ApiError, exception_to_response
from app.services import Services, build_services
from app.settings import Settings

log = logging.getLogger("footnote")


def _api_key_of(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    auth = connection.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.headers.get("x-api-key") or None


def _auth_guard(keys: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        # Health checks and the bundled corpus pages stay open; the API needs a key.
        if not keys or handler.opt.get("public"):
            return
        given = _api_key_of(connection)
        # Compare against every key in constant time so timing reveals nothing.
        ok = given is not None and any(
            hmac.compare_digest(given.encode(), key.encode()) for key in keys
        )
        if not ok:
            raise ApiError(
                401,
                "Missing or invalid API key. Send 'Authorization: Bearer <key>' "
                "or 'x-api-key: <key>'.",
                type="authentication_error",
                code="invalid_api_key",
            )

    return guard


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """Build the app; ``services`` default to real ones built from ``settings`` at start-up."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = build_services(settings) if services is None else services
        app.state.settings = settings
        if owned:
            await app.state.services.start()
        log.info(
            "footnote ready: search=%s upstream=%s",
            settings.search_provider,
            settings.upstream_base_url or "none (extractive answers)",
        )
        try:
            yield
        finally:
            if owned:
                await app.state.services.aclose()

    return Litestar(
        route_handlers=[chat_completions, list_models, healthz, corpus_page],
        lifespan=[lifespan],
        guards=[_auth_guard(settings.api_keys)],
        exception_handlers={Exception: exception_to_response},
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(title="Footnote", version="0.1.0", path="/openapi"),
        debug=False,
    )
