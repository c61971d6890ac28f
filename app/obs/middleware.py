"""The ASGI layer around every HTTP request: request id, access log line, metrics.

It wraps Litestar's whole request handler (``app.asgi_handler``), not one route, so
unknown paths, refused methods and errors raised before routing get the same treatment:
an ``x-request-id`` echoed on every response and one access log line each.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.obs.context import RequestRecord, accept_request_id, close_record, open_record
from app.obs.metrics import Metrics

access_log = logging.getLogger("footnote.access")

HEADER = b"x-request-id"
# Probes and scrapes arrive every few seconds: logged at DEBUG unless they fail.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def access_fields(
    record: RequestRecord, *, method: str, path: str, route: str, status: int, ms: float
) -> dict[str, Any]:
    """The access log line's fields; request bodies and credentials are never among them."""
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": round(ms, 1),
    }
    optional: dict[str, Any] = {
        "tier": record.tier,
        "searches": record.searches,
        "pages_fetched": record.pages_fetched,
        "pages_failed": record.pages_failed,
        "cache_hits": record.cache_hits,
        "cache_misses": record.cache_misses,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "error_type": record.error_type,
        "error_code": record.error_code,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    if record.stages_ms:
        fields["stages_ms"] = {k: round(v, 1) for k, v in record.stages_ms.items()}
    return fields


class ObservabilityMiddleware:
    """Pure ASGI middleware; ``metrics`` is ``None`` when metrics are switched off."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope; only HTTP requests are observed."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(_header(scope, HEADER))
        echoed = request_id.encode("ascii")
        record, token = open_record(request_id)
        status = 500  # what the client sees if the app dies before answering
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers") or () if bytes(k).lower() != HEADER
                ]
                headers.append((HEADER, echoed))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - t0
            route = scope.get("path_template") or "unmatched"
            method = str(scope.get("method", ""))
            fields = access_fields(
                record,
                method=method,
                path=scope.get("path", ""),
                route=route,
                status=status,
                ms=seconds * 1000,
            )
            quiet = route in QUIET_ROUTES and status < 400
            access_log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                method,
                fields["path"],
                status,
                extra={"fields": fields, "request_id": request_id},
            )
            if self.metrics is not None:
                self.metrics.observe(
                    record, route=route, method=method, status=status, seconds=seconds
                )
            close_record(token)
