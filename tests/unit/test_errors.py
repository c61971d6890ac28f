"""The error module maps every failure to an OpenAI error with the right status."""

from __future__ import annotations

import msgspec
import pytest
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from app.errors import ApiError, UpstreamError, api_error_from, error_body
from retrieval.errors import FetchError, SearchUnavailable


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (SearchUnavailable("searxng answered 500"), 503, "search_unavailable"),
        (UpstreamError("x", status=500), 502, "upstream_error"),
        (UpstreamError("x", timeout=True), 504, "upstream_timeout"),
        (FetchError("timeout", "slow"), 502, "retrieval_error"),
        (msgspec.DecodeError("bad"), 400, "invalid_json"),
        (NotFoundException(), 404, "not_found"),
        (MethodNotAllowedException(), 405, "method_not_allowed"),
        (ZeroDivisionError("secret internal detail"), 500, "internal_error"),
    ],
)
def test_mapping(exc: Exception, status: int, code: str) -> None:
    err = api_error_from(exc)
    assert (err.status, err.code) == (status, code)
    assert "secret internal detail" not in err.message


def test_api_error_passes_through_and_body_has_all_keys() -> None:
    err = ApiError(400, "bad", param="n", code="invalid_value")
    assert api_error_from(err) is err
    assert error_body("m", "t") == {
        "error": {"message": "m", "type": "t", "param": None, "code": None}
    }


def test_a_task_group_of_known_failures_maps_like_the_failure_itself() -> None:
    from app.errors import api_error_from
    from retrieval.errors import SearchUnavailable

    group = ExceptionGroup("tasks", [SearchUnavailable("SearXNG is down")])
    err = api_error_from(group)
    assert (err.status, err.code) == (503, "search_unavailable")
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [SearchUnavailable("x")])])
    assert api_error_from(nested).status == 503
    mixed = ExceptionGroup("tasks", [SearchUnavailable("x"), RuntimeError("bug")])
    assert (api_error_from(mixed).status, api_error_from(mixed).code) == (500, "internal_error")
