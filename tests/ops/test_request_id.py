"""``x-request-id`` on every response, and ``x-should-retry`` on exactly the unretryable errors."""

from __future__ import annotations

import logging
import re
import time

import httpx
import pytest

from app.obs.context import MAX_REQUEST_ID, accept_request_id, mint_request_id
from tests.fakes.footnote_server import StartFootnote
from tests.fakes.searxng import FakeSearxng
from tests.fakes.upstream import FakeUpstream

MINTED = re.compile(r"req_[0-9a-f]{32}")
QUESTION = {"model": "speed", "messages": [{"role": "user", "content": "Who directed Ed Wood?"}]}
KEY = "sk-test-request-id"


@pytest.fixture(scope="module")
def base(footnote_factory: StartFootnote) -> str:
    """A Footnote with a small body limit, an API key and the fakes behind it."""
    return footnote_factory(
        api_keys=(KEY,), max_request_bytes=4096, extract_workers=0, upstream_fallback="error"
    )


def client(base: str, *, key: str | None = KEY) -> httpx.Client:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def test_mint_and_accept() -> None:
    assert MINTED.fullmatch(mint_request_id())
    assert mint_request_id() != mint_request_id()
    assert accept_request_id("abc-123_XYZ.9:/") == "abc-123_XYZ.9:/"
    assert accept_request_id("x" * MAX_REQUEST_ID) == "x" * MAX_REQUEST_ID
    for bad in (None, "", "x" * (MAX_REQUEST_ID + 1), "has space", "tab\there", "é", "a\x7f"):
        assert MINTED.fullmatch(accept_request_id(bad)), bad


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/models", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/v1/models", None, 405),
        ("POST", "/v1/chat/completions", b"", 400),
        ("POST", "/v1/chat/completions", QUESTION, 200),
    ],
)
def test_client_id_echoed_on_every_kind_of_response(
    base: str, method: str, path: str, body: object, status: int
) -> None:
    with client(base) as c:
        kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
        resp = c.request(method, path, headers={"x-request-id": "trace-42"}, **kwargs)
    assert resp.status_code == status
    assert resp.headers.get_list("x-request-id") == ["trace-42"]


def test_id_minted_when_absent_or_insane(base: str) -> None:
    with client(base) as c:
        first = c.get("/v1/models").headers["x-request-id"]
        second = c.get("/v1/models").headers["x-request-id"]
        replaced = c.get("/v1/models", headers={"x-request-id": "y" * 129})
        spaced = c.get("/v1/models", headers={"x-request-id": "two words"})
    assert MINTED.fullmatch(first) and MINTED.fullmatch(second) and first != second
    assert MINTED.fullmatch(replaced.headers["x-request-id"])
    assert MINTED.fullmatch(spaced.headers["x-request-id"])


def test_id_on_unauthorized_and_stream(base: str) -> None:
    with client(base, key=None) as c:
        denied = c.get("/v1/models", headers={"x-request-id": "no-key"})
    assert denied.status_code == 401 and denied.headers["x-request-id"] == "no-key"
    with (
        client(base) as c,
        c.stream(
            "POST",
            "/v1/chat/completions",
            json={**QUESTION, "stream": True},
            headers={"x-request-id": "streamed"},
        ) as resp,
    ):
        body = resp.read().decode()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["x-request-id"] == "streamed"
    assert body.rstrip().endswith("data: [DONE]")


def test_request_id_reaches_log_records(base: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="footnote")
    with client(base) as c:
        resp = c.post("/v1/chat/completions", json=QUESTION, headers={"x-request-id": "logged"})
    assert resp.status_code == 200

    def access_lines() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == "footnote.access" and getattr(r, "request_id", None) == "logged"
        ]

    # The access line is written once the last byte is sent: the client may be faster.
    deadline = time.monotonic() + 5
    while not access_lines() and time.monotonic() < deadline:
        time.sleep(0.01)
    access = access_lines()
    assert len(access) == 1
    fields = access[0].fields  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["route"] == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda c: c.post("/v1/chat/completions", content=b"{"), 400),
        (lambda c: c.post("/v1/chat/completions", content=b""), 400),
        (lambda c: c.get("/v1/models", headers={"authorization": "Bearer wrong"}), 401),
        (lambda c: c.get("/nowhere"), 404),
        (lambda c: c.post("/v1/chat/completions", json={**QUESTION, "model": "nope"}), 404),
        (lambda c: c.post("/v1/chat/completions", content=b"x" * 5000), 413),
        (
            lambda c: c.post(
                "/v1/chat/completions",
                json={
                    "model": "speed",
                    "messages": [{"role": "system", "content": "only a system turn"}],
                },
            ),
            422,
        ),
    ],
)
def test_unretryable_errors_say_so(base: str, make: object, status: int) -> None:
    with client(base) as c:
        resp = make(c)  # type: ignore[operator]
    assert resp.status_code == status
    assert resp.headers.get("x-should-retry") == "false"
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_retryable_errors_leave_retry_to_the_client(
    base: str, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    with client(base) as c:
        searxng.fail_with = 503
        search_down = c.post("/v1/chat/completions", json=QUESTION)
        searxng.fail_with = None
        upstream.fail_with = 500
        upstream_down = c.post(
            "/v1/chat/completions",
            json={**QUESTION, "messages": [{"role": "user", "content": "Who was Ed Wood?"}]},
        )
    assert search_down.status_code == 503
    assert upstream_down.status_code == 502
    for resp in (search_down, upstream_down):
        assert "x-should-retry" not in resp.headers
        assert resp.headers["x-request-id"]


def test_rate_limited_429_has_no_should_retry(footnote_factory: StartFootnote) -> None:
    base = footnote_factory(rate_limit=1, extract_workers=0)
    with httpx.Client(base_url=base, timeout=30) as c:
        answers = [c.get("/v1/models") for _ in range(3)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert all("x-should-retry" not in r.headers and r.headers["x-request-id"] for r in limited)
