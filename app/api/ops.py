"""Operations endpoints: ``GET /metrics`` (Prometheus) and ``GET /readyz`` (readiness).

``/healthz`` (``api/health.py``) says the process serves requests; ``/readyz`` says it can
answer them: the search provider and the upstream LLM (when one is configured) respond
within ``ready_timeout_s``. Orchestrators route traffic on ``/readyz`` and restart on
``/healthz``, so only ``/readyz`` looks past the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from litestar import Response, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler

from app.errors import error_body
from app.obs.context import note_error
from app.obs.metrics import CONTENT_TYPE, Metrics
from app.services import Services
from app.settings import Settings

log = logging.getLogger("footnote.ops")


def metrics_handler(*, public: bool) -> HTTPRouteHandler:
    """``GET /metrics``; ``public`` serves it without an API key (``FOOTNOTE_METRICS=public``)."""

    @get(
        "/metrics",
        media_type=CONTENT_TYPE,
        sync_to_thread=False,
        opt={"public": public},
        summary="Prometheus metrics",
    )
    def metrics(state: State) -> Response[bytes]:
        """Prometheus text exposition of the service's metrics (all workers together)."""
        registry: Metrics = state.metrics
        return Response(content=registry.render(), media_type=CONTENT_TYPE)

    return metrics


async def _probe(check: Callable[[], Awaitable[None]], timeout_s: float) -> dict[str, Any]:
    """Run one readiness check within ``timeout_s``; its status, duration and any error."""
    t0 = time.perf_counter()
    result: dict[str, Any] = {"status": "ok"}
    try:
        with anyio.fail_after(timeout_s):
            await check()
    except TimeoutError:
        result = {"status": "fail", "error": f"no answer within {timeout_s:g}s"}
    except Exception as exc:
        # Our own exceptions carry short messages without URLs or keys; others are named only.
        known = type(exc).__module__.startswith(("app.", "retrieval."))
        result = {"status": "fail", "error": str(exc) if known else type(exc).__name__}
        if not known:
            log.warning("readiness check failed unexpectedly", exc_info=exc)
    result["duration_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return result


async def check_all(services: Services, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Every readiness check, run at once: ``{"search": {...}, "upstream": {...}}``."""
    checks: dict[str, dict[str, Any]] = {}
    probe = getattr(services.search, "ready", None)
    if probe is None and services.web_search is not None:
        # A combined local + web search: the local index is in-process, the web side is not.
        probe = getattr(services.web_search, "ready", None)
    upstream = services.upstream

    async def search() -> None:
        if probe is None and services.search is services.local_index:
            checks["search"] = {"status": "ok"}  # the on-disk index: in-process, nothing to reach
        elif probe is None:
            # No cheap probe (a metered API): checking would spend quota. Counts as ready.
            checks["search"] = {"status": "unchecked"}
        else:
            checks["search"] = await _probe(probe, timeout_s)
        checks["search"]["provider"] = services.search.name

    async def upstream_check() -> None:
        if upstream is None:
            checks["upstream"] = {"status": "disabled"}  # extractive answers need none
            return

        async def models() -> None:
            await upstream.ready(timeout_s)

        checks["upstream"] = await _probe(models, timeout_s)

    async with anyio.create_task_group() as tg:
        tg.start_soon(search)
        tg.start_soon(upstream_check)
    return {name: checks[name] for name in ("search", "upstream")}


@get("/readyz", opt={"public": True}, summary="Readiness")
async def readyz(state: State) -> Response[dict[str, Any]]:
    """200 when the search provider and the upstream answer, else 503 with each check."""
    services: Services = state.services
    settings: Settings = state.settings
    checks = await check_all(services, settings.ready_timeout_s)
    failed = [name for name, check in checks.items() if check["status"] == "fail"]
    if not failed:
        return Response({"status": "ready", "checks": checks}, status_code=200)
    message = f"Not ready: {' and '.join(failed)} check failed."
    note_error("service_unavailable_error", "not_ready")
    body = error_body(message, "service_unavailable_error", None, "not_ready")
    return Response({**body, "status": "not_ready", "checks": checks}, status_code=503)
