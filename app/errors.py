"""The one place that turns errors into OpenAI-shaped JSON, a status and headers.

Every failure a client sees is ``{"error": {"message", "type", "param", "code"}}`` with all
four keys present. Unexpected exceptions are logged here with their traceback and answered
with a generic 500: no internal detail reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Send

from app.obs.context import note_error
from retrieval.errors import RetrievalError, SearchUnavailable

log = logging.getLogger("footnote.errors")

# Failures a retry cannot fix: the official SDKs retry 408/409/429/5xx unless told not to.
NO_RETRY = {"x-should-retry": "false"}
# 4xx statuses a retry may fix (timeout, conflict, rate limit): no ``x-should-retry: false``.
RETRYABLE_4XX = frozenset({408, 409, 429})


class ApiError(Exception):
    """An error with everything needed to answer it the OpenAI way."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}


class UpstreamError(Exception):
    """The upstream LLM failed; ``status`` is what the upstream answered, if anything."""

    def __init__(self, message: str, *, status: int | None = None, timeout: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.timeout = timeout


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object (all four keys always present)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def retry_headers(err: ApiError) -> dict[str, str]:
    """``err``'s headers, plus ``x-should-retry: false`` on a 4xx no retry can fix."""
    headers = dict(err.headers)
    if 400 <= err.status < 500 and err.status not in RETRYABLE_4XX:
        # The same request would fail the same way: spare the client's SDK its retries.
        headers.setdefault("x-should-retry", "false")
    return headers


async def send_error(send: Send, err: ApiError) -> None:
    """Answer ``err`` directly on an ASGI ``send``: for middleware that runs outside Litestar's
    exception handlers (rate limits, the request deadline). Same body and headers as above.
    """
    body = msgspec.json.encode(error_body(err.message, err.type, err.param, err.code))
    note_error(err.type, err.code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in retry_headers(err).items()
        ),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _known(exc: BaseException) -> Exception | None:
    """The one client-facing error an exception group stands for, if all it holds is those.

    A task group wraps what its tasks raise; a search or upstream failure must not turn into
    a 500 on its way out.
    """
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_known(e) for e in exc.exceptions]
        return leaves[0] if leaves and all(leaf is not None for leaf in leaves) else None
    if isinstance(exc, ApiError | SearchUnavailable | UpstreamError):
        return exc
    return None


def api_error_from(exc: Exception) -> ApiError:
    """Map any exception to the ``ApiError`` a client should see."""
    if isinstance(exc, BaseExceptionGroup):
        inner = _known(exc)
        if inner is not None:
            exc = inner
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SearchUnavailable):
        return ApiError(
            503,
            f"Search is unavailable: {exc}",
            type="service_unavailable_error",
            code="search_unavailable",
        )
    if isinstance(exc, UpstreamError):
        if exc.timeout:
            return ApiError(
                504,
                "The upstream language model did not answer in time.",
                type="upstream_error",
                code="upstream_timeout",
            )
        detail = f" (it answered HTTP {exc.status})" if exc.status else ""
        return ApiError(
            502,
            f"The upstream language model failed{detail}.",
            type="upstream_error",
            code="upstream_error",
            headers=NO_RETRY if exc.status in {400, 401, 403, 404, 422} else None,
        )
    if isinstance(exc, RetrievalError):
        return ApiError(
            502, "Evidence retrieval failed.", type="server_error", code="retrieval_error"
        )
    if isinstance(exc, msgspec.ValidationError):
        return ApiError(
            400, f"Invalid request: {exc}", param=_param_of(str(exc)), code="invalid_value"
        )
    if isinstance(exc, msgspec.DecodeError):
        return ApiError(400, f"The request body is not valid JSON: {exc}", code="invalid_json")
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    return ApiError(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "The server had an error while processing your request.",
        type="server_error",
        code="internal_error",
    )


def _from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.status_code
    if status == 404:
        return ApiError(404, "Unknown route.", code="not_found", headers=NO_RETRY)
    if status == 405:
        return ApiError(405, "Method not allowed on this route.", code="method_not_allowed")
    if status == 413:
        return ApiError(413, "The request body is too large.", code="request_too_large")
    if isinstance(exc, ValidationException):
        return ApiError(400, f"Invalid request: {exc.detail}", code="invalid_request")
    if status == 401:
        return ApiError(401, str(exc.detail), type="authentication_error", code="invalid_api_key")
    if 400 <= status < 500:
        return ApiError(status, str(exc.detail), code="invalid_request")
    return ApiError(status, "The server had an error.", type="server_error", code="internal_error")


def _param_of(message: str) -> str | None:
    """The request path msgspec names: ``... - at `$.messages[0].role``` -> ``messages[0].role``.

    A missing field is named by its parent path plus the field itself.
    """
    path = message.split("at `$", 1)[1].rstrip("`").lstrip(".") if "at `$" in message else ""
    if message.startswith("Object missing required field `"):
        missing = message.split("`", 2)[1]
        return f"{path}.{missing}" if path else missing
    return path or None


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar exception handler: the single exit for every error."""
    err = api_error_from(exc)
    if err.status >= 500 and _known(exc) is None:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    note_error(err.type, err.code)
    headers = retry_headers(err)
    if err.status == 405 and isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    return Response(
        content=error_body(err.message, err.type, err.param, err.code),
        status_code=err.status,
        headers=headers,
        media_type="application/json",
    )
