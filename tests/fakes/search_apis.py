"""Loopback fakes of the Brave, Tavily and Exa search APIs, all three on one port.

Each API lives under its own prefix, so a provider is pointed at ``fake.base_url_for(api)``:

- ``/brave/res/v1/web/search?q=&count=`` (GET, key in ``X-Subscription-Token``) answers
  ``{"type": "search", "web": {"type": "search", "results": [...]}}`` with
  ``url``/``title``/``description``/``page_age``/``age``; the description wraps the query's
  words in ``<strong>`` as Brave does.
- ``/tavily/search`` (POST JSON ``{query, max_results, search_depth}``, ``Authorization:
  Bearer``) answers ``{"query", "results": [{url, title, content, score, published_date}]}``.
- ``/exa/search`` (POST JSON ``{query, numResults, type}``, ``x-api-key``) answers
  ``{"requestId", "results": [{id, url, title, publishedDate, author, text}]}``.

A wrong or missing key is answered 401. Knobs (``reset()`` restores them): ``results`` (the
canonical ``FakeResult`` list every API renders in its own shape, cut to the requested count),
``payload`` (a JSON value sent instead, verbatim), ``raw_body`` (bytes sent as the 200 body,
e.g. broken JSON), ``fail_with`` + ``fail_headers`` (an error status and its headers),
``latency_s`` (delay before answering), ``drip_s`` (send the body one byte per ``drip_s``),
``cut_body`` (declare the whole body's length, send half of it and end the response).
``requests`` logs every request received (``ReceivedRequest``).
"""

from __future__ import annotations

import html
import json
from typing import Any, TypedDict
from urllib.parse import parse_qs

from tests.fakes.server import (
    Receive,
    Scope,
    Send,
    ServedFake,
    ServerThread,
    header,
    pause,
    read_body,
    send_bytes,
    send_json,
)

__all__ = ["API_KEY", "DEFAULT_RESULTS", "FakeResult", "FakeSearchApis", "ReceivedRequest"]

API_KEY = "test-key-123"
APIS = ("brave", "tavily", "exa")


class FakeResult(TypedDict):
    """One canonical result, rendered by each fake API in its own field names."""

    url: str
    title: str
    snippet: str
    published: str | None


class ReceivedRequest(TypedDict):
    """A request the fake received (for assertions)."""

    api: str
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]
    json: Any


DEFAULT_RESULTS: list[FakeResult] = [
    FakeResult(
        url="https://example.org/eiffel",
        title="Eiffel Tower - history",
        snippet="The Eiffel Tower was completed in 1889 for the World's Fair.",
        published="2023-09-20T14:05:02",
    ),
    FakeResult(
        url="https://example.net/paris",
        title="Paris landmarks",
        snippet="Paris is home to the Eiffel Tower & the Louvre.",
        published=None,
    ),
    FakeResult(
        url="https://example.com/tower",
        title="Lattice towers",
        snippet="Wrought-iron lattice towers of the nineteenth century.",
        published="2021-02-03T00:00:00Z",
    ),
]


class FakeSearchApis(ServedFake):
    """The three search APIs on one loopback port (see the module docstring)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare (not start) the server; ``start()`` or ``with`` serves it."""
        self.requests: list[ReceivedRequest] = []
        self.reset()
        self.server = ServerThread(self, host, port, name="search-apis")

    def reset(self) -> None:
        """Clear the request log and restore every knob to its default."""
        self.requests = []
        self.results: list[FakeResult] = list(DEFAULT_RESULTS)
        self.payload: Any = None
        self.raw_body: bytes | None = None
        self.fail_with: int | None = None
        self.fail_headers: list[tuple[str, str]] = []
        self.latency_s = 0.0
        self.drip_s = 0.0
        self.cut_body = False

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` of the server."""
        return self.server.base_url

    def base_url_for(self, api: str) -> str:
        """The base URL to give the ``api`` provider (``brave``, ``tavily`` or ``exa``)."""
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}")
        return f"{self.server.base_url}/{api}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route ``/<api>/...`` to the fake API; 404 for anything else."""
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        api, _, rest = str(scope["path"]).lstrip("/").partition("/")
        route = {"brave": "res/v1/web/search", "tavily": "search", "exa": "search"}.get(api)
        method = "GET" if api == "brave" else "POST"
        if route is None or rest != route:
            await send_bytes(send, 404, b"Not Found", [("content-type", "text/plain")])
            return
        if scope["method"] != method:
            await send_bytes(send, 405, b"Method Not Allowed", [("allow", method)])
            return
        query_string = bytes(scope.get("query_string", b"")).decode("latin-1")
        params = {k: v[-1] for k, v in parse_qs(query_string).items()}
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        self.requests.append(
            ReceivedRequest(
                api=api,
                method=scope["method"],
                path=str(scope["path"]),
                headers={
                    bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
                    for k, v in scope.get("headers", ())
                },
                params=params,
                json=payload,
            )
        )
        if not await pause(self.latency_s, receive, self.server.stopping):
            return
        if not _authorised(api, scope):
            await send_json(send, 401, {"error": "invalid API key"})
        elif self.fail_with is not None:
            await send_json(send, self.fail_with, {"error": "fake failure"}, self.fail_headers)
        elif self.raw_body is not None:
            await self._send(send, receive, self.raw_body)
        elif self.payload is not None:
            await self._send(send, receive, json.dumps(self.payload).encode())
        else:
            answer = _render(api, params, payload if isinstance(payload, dict) else {}, self)
            await self._send(send, receive, json.dumps(answer).encode())

    async def _send(self, send: Send, receive: Receive, body: bytes) -> None:
        if self.cut_body:
            # Declare the full length, send half: the connection closes mid-body.
            headers = [(b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body[: len(body) // 2]})
            return
        if self.drip_s <= 0:
            await send_bytes(send, 200, body, [("content-type", "application/json")])
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(len(body)):
            if not await pause(self.drip_s, receive, self.server.stopping):
                return
            more = i + 1 < len(body)
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": more})


def _authorised(api: str, scope: Scope) -> bool:
    if api == "brave":
        return header(scope, "x-subscription-token") == API_KEY
    if api == "tavily":
        return header(scope, "authorization") == f"Bearer {API_KEY}"
    return header(scope, "x-api-key") == API_KEY


def _render(
    api: str, params: dict[str, str], payload: dict[str, Any], fake: FakeSearchApis
) -> dict[str, Any]:
    """Render ``fake.results`` as ``api`` answers them, cut to the count it was asked for."""
    if api == "brave":
        query, count = params.get("q", ""), _int(params.get("count"), 20)
        rows = fake.results[:count]
        return {
            "type": "search",
            "query": {"original": query},
            "web": {
                "type": "search",
                "results": [
                    {
                        "title": r["title"],
                        "url": r["url"],
                        "description": _strong(r["snippet"], query),
                        **({"page_age": r["published"]} if r["published"] else {}),
                        "language": "en",
                    }
                    for r in rows
                ],
            },
        }
    if api == "tavily":
        rows = fake.results[: _int(payload.get("max_results"), 5)]
        return {
            "query": payload.get("query", ""),
            "results": [
                {
                    "title": r["title"],
                    "url": r["url"],
                    "content": r["snippet"],
                    "score": round(0.9 - 0.1 * i, 2),
                    **({"published_date": r["published"]} if r["published"] else {}),
                }
                for i, r in enumerate(rows)
            ],
            "response_time": 0.01,
        }
    rows = fake.results[: _int(payload.get("numResults"), 10)]
    return {
        "requestId": "fake-request",
        "resolvedSearchType": "neural",
        "results": [
            {
                "id": r["url"],
                "url": r["url"],
                "title": r["title"],
                "publishedDate": r["published"],
                "author": None,
                "text": r["snippet"],
            }
            for r in rows
        ],
    }


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _strong(text: str, query: str) -> str:
    """HTML-escape ``text`` and wrap the query's words in ``<strong>``, as Brave does."""
    wanted = {w.lower() for w in query.split()}
    words = [html.escape(w) for w in text.split()]
    return " ".join(f"<strong>{w}</strong>" if w.lower() in wanted else w for w in words)
