"""Every failure is an OpenAI error object with the fitting status, and nothing leaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

Q = {"role": "user", "content": "Who directed Doctor Strange?"}


def _assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert err["code"] is None or isinstance(err["code"], str)
    if code is not None:
        assert err["code"] == code
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return dict(err)


@pytest.fixture
def http(footnote: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=footnote, timeout=30) as client:
        yield client


def test_malformed_json(http: httpx.Client) -> None:
    r = http.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_error(r, 400, "invalid_json")


def test_empty_body(http: httpx.Client) -> None:
    _assert_error(http.post("/v1/chat/completions", content=b""), 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "base"}, "messages"),
        ({"messages": [Q]}, "model"),
        ({"model": "base", "messages": []}, "messages"),
        ({"model": "base", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "base", "messages": [Q], "n": 3}, "n"),
        ({"model": "base", "messages": [Q], "tools": [{"type": "function"}]}, "tools"),
        ({"model": "base", "messages": [Q], "temperature": "hot"}, "temperature"),
    ],
)
def test_invalid_requests_name_their_param(
    http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    err = _assert_error(http.post("/v1/chat/completions", json=body), 400)
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "Be brief."}],
        # (an image part is a 400: tests/contract/test_request_contract.py)
        [{"role": "user", "content": [{"type": "text", "text": " "}]}],
        [{"role": "user", "content": "   "}],
    ],
)
def test_nothing_to_research_is_422(http: httpx.Client, messages: list[Any]) -> None:
    r = http.post("/v1/chat/completions", json={"model": "base", "messages": messages})
    err = _assert_error(r, 422, "missing_question")
    assert err["param"] == "messages"


def test_a_bug_is_a_bare_500(searxng: Any, upstream: Any) -> None:
    from app.server import create_app
    from app.services import build_services
    from app.settings import Settings
    from tests.fakes.server import ServerThread

    class Broken:
        name = "broken"

        async def search(self, query: str, *, limit: int) -> list[Any]:
            raise ZeroDivisionError("secret internal detail /etc/passwd")

    settings = Settings(search_provider="searxng", searxng_url=searxng.base_url, extract_workers=0)
    services = build_services(settings)
    services.search = Broken()
    app: Any = create_app(settings, services)
    with ServerThread(app, "127.0.0.1", lifespan=True) as server:
        r = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": "speed", "messages": [Q]},
            timeout=30,
        )
    err = _assert_error(r, 500, "internal_error")
    assert err["type"] == "server_error"
    assert "secret" not in r.text and "ZeroDivision" not in r.text


def test_unknown_model_is_404_for_the_sdk(footnote: str) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[Q])  # type: ignore[list-item]
    assert info.value.code == "model_not_found"


def test_unknown_route_and_method(http: httpx.Client) -> None:
    _assert_error(http.get("/v1/nothing-here"), 404)
    _assert_error(http.get("/v1/chat/completions"), 405)


def test_body_too_large(http: httpx.Client) -> None:
    big = b'{"model": "base", "messages": [], "pad": "' + b"x" * 1_100_000 + b'"}'
    _assert_error(http.post("/v1/chat/completions", content=big), 413)


def test_upstream_failure_is_502_without_retry_storm(footnote_factory: Any, upstream: Any) -> None:
    # With FOOTNOTE_UPSTREAM_FALLBACK=extractive (the default) an outage is answered
    # extractively instead (tests/e2e/test_faults.py); ``error`` keeps the 502.
    footnote = footnote_factory(upstream_fallback="error")
    upstream.fail_with = 500
    try:
        r = httpx.post(
            f"{footnote}/v1/chat/completions", json={"model": "speed", "messages": [Q]}, timeout=30
        )
        _assert_error(r, 502, "upstream_error")
        assert "fake-key" not in r.text
    finally:
        upstream.reset()


def test_upstream_rejecting_us_is_502_not_retryable(footnote: str, upstream: Any) -> None:
    upstream.fail_with = 401
    try:
        r = httpx.post(
            f"{footnote}/v1/chat/completions", json={"model": "speed", "messages": [Q]}, timeout=30
        )
        _assert_error(r, 502, "upstream_error")
        assert r.headers["x-should-retry"] == "false"
    finally:
        upstream.reset()


def test_search_down_is_503(footnote: str, searxng: Any) -> None:
    searxng.fail_with = 500
    try:
        r = httpx.post(
            f"{footnote}/v1/chat/completions", json={"model": "speed", "messages": [Q]}, timeout=30
        )
        _assert_error(r, 503, "search_unavailable")
    finally:
        searxng.reset()


def test_search_down_while_streaming_is_503_before_the_stream(footnote: str, searxng: Any) -> None:
    searxng.fail_with = 429
    try:
        client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="speed", messages=[Q], stream=True)  # type: ignore[list-item]
        assert info.value.status_code == 503
    finally:
        searxng.reset()


def test_models_and_health(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    assert models["object"] == "list"
    ids = [m["id"] for m in models["data"]]
    assert ids == ["speed", "lite", "base", "core"]
    assert all(m["budget"]["pages"] > 0 for m in models["data"])
    assert http.get("/healthz").json()["status"] == "ok"


@pytest.fixture(scope="module")
def keyed(footnote_factory: Any) -> str:
    return str(footnote_factory(api_keys=("k-one", "k-two")))


def test_api_key_required(keyed: str) -> None:
    r = httpx.post(f"{keyed}/v1/chat/completions", json={"model": "speed", "messages": [Q]})
    err = _assert_error(r, 401, "invalid_api_key")
    assert err["type"] == "authentication_error"
    _assert_error(httpx.get(f"{keyed}/v1/models", headers={"authorization": "Bearer nope"}), 401)
    client = openai.OpenAI(base_url=f"{keyed}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_bearer_and_x_api_key_both_work(keyed: str) -> None:
    client = openai.OpenAI(base_url=f"{keyed}/v1", api_key="k-two", max_retries=0)
    assert next(m.id for m in client.models.list()) == "speed"
    r = httpx.post(
        f"{keyed}/v1beta/chat/completions",
        json={"model": "speed", "messages": [Q]},
        headers={"x-api-key": "k-one"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["basis"][0]["field"] == "content"
    assert httpx.get(f"{keyed}/healthz").status_code == 200
