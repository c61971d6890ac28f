"""``create_app(settings, services)``: the one way to build the Litestar application."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig

from app.api.chat import chat_completions
from app.api.health import corpus_page, healthz
from app.api.models import list_models
from app.api.ops import metrics_handler, readyz
from app.api.playground import playground, static_file
from app.deadline import DeadlineMiddleware
from app.disconnect import CancelOnDisconnect
from app.errors import ApiError, exception_to_response
from app.obs.metrics import Metrics
from app.obs.middleware import ObservabilityMiddleware
from app.ratelimit import RateLimitMiddleware
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


def _redacted(url: str | None) -> str | None:
    """``url`` without any credentials in it (``https://user:pass@host`` -> ``https://host``)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
            _redacted(settings.upstream_base_url) or "none (extractive answers)",
        )
        try:
            yield
        finally:
            if owned:
                await app.state.services.aclose()

    metrics = Metrics() if settings.metrics != "off" else None
    ops = (
        [readyz]
        if metrics is None
        else [readyz, metrics_handler(public=settings.metrics == "public")]
    )
    app = Litestar(
        route_handlers=[
            *ops,
            chat_completions,
            list_models,
            healthz,
            corpus_page,
            playground,
            static_file,
        ],
        lifespan=[lifespan],
        guards=[_auth_guard(settings.api_keys)],
        # A client that hangs up cancels its request's research and upstream call.
        # Then API requests are counted against their rate limit and bounded by the deadline.
        middleware=[
            CancelOnDisconnect,
            RateLimitMiddleware(settings.api_keys),
            DeadlineMiddleware(settings.request_timeout_s),
        ],
        exception_handlers={Exception: exception_to_response},
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(title="Footnote", version="0.1.0", path="/openapi"),
        debug=False,
        # Logging is configured once per process (``app.obs.logs``), not by Litestar.
        logging_config=None,
    )
    app.state.metrics = metrics
    # Around Litestar's whole handler, not as route middleware: unknown paths (404), refused
    # methods and errors raised before routing get a request id and an access line too.
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, metrics)
    return app
