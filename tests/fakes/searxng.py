"""A SearXNG-compatible search endpoint over the simulated web, ranked by BM25.

``GET /search?q=...&format=json&pageno=N`` (POST with a form body works too, as in SearXNG)
answers like a real instance's JSON API: ten results a page, each pointing at a
``SimulatedWeb`` URL with a query-biased snippet of the page text. A ``format`` other than json
is refused with 403, as SearXNG does when only the HTML format is enabled. Tests can add
latency, make it fail (500, 429 ...), inject extra results and inspect the received queries.

Ranking: rank_bm25's ``BM25Okapi`` over the lower-cased word tokens of title + text, no
stopword removal (measured on the 600 corpus questions: a gold page is in the top 10 for 87%,
all gold pages for 78%; removing stopwords lost 1-2 points). Its ``get_scores`` loops over every
document in Python for each query word (7-17 ms a query here), so ``_Postings`` computes the same
scores from an inverted index built from its statistics (well under 1 ms a query).
"""

from __future__ import annotations

import time
from typing import Any, TypedDict
from urllib.parse import parse_qs

import numpy as np
from rank_bm25 import BM25Okapi

from tests.fakes.server import (
    Receive,
    Scope,
    Send,
    ServedFake,
    ServerThread,
    pause,
    read_body,
    send_bytes,
    send_json,
)
from tests.fakes.simweb import SimulatedWeb
from tests.fakes.text import snippet, words

__all__ = ["FakeSearxng", "ReceivedQuery", "SearchResult"]

_FAILURE_TEXT = {429: b"Too Many Requests", 403: b"Forbidden", 503: b"Service Unavailable"}


class _Postings:
    """Inverted index over a ``BM25Okapi``: the same scores as ``get_scores``, sparse."""

    def __init__(self, bm25: BM25Okapi) -> None:
        self.size = len(bm25.doc_len)
        self.idf: dict[str, float] = bm25.idf
        self.k1: float = bm25.k1
        doc_len = np.asarray(bm25.doc_len, dtype=float)
        self.norm = bm25.k1 * (1 - bm25.b + bm25.b * doc_len / bm25.avgdl)
        raw: dict[str, tuple[list[int], list[int]]] = {}
        for index, freqs in enumerate(bm25.doc_freqs):
            for word, count in freqs.items():
                entry = raw.get(word)
                if entry is None:
                    entry = raw[word] = ([], [])
                entry[0].append(index)
                entry[1].append(count)
        self.postings = {
            word: (np.asarray(docs), np.asarray(counts, dtype=float))
            for word, (docs, counts) in raw.items()
        }

    def scores(self, terms: list[str]) -> Any:
        """BM25 score of every document for the query ``terms`` (a numpy array)."""
        score = np.zeros(self.size)
        for term in terms:
            posting = self.postings.get(term)
            if posting is None:
                continue
            docs, tf = posting
            score[docs] += self.idf[term] * tf * (self.k1 + 1) / (tf + self.norm[docs])
        return score


class SearchResult(TypedDict):
    """One entry of ``results`` as SearXNG's JSON API returns it."""

    url: str
    title: str
    content: str
    publishedDate: str | None
    engine: str
    engines: list[str]
    positions: list[int]
    category: str
    score: float


class ReceivedQuery(TypedDict):
    """A request the fake received (for assertions)."""

    method: str
    q: str
    format: str
    pageno: int
    params: dict[str, str]


class FakeSearxng(ServedFake):
    """SearXNG's ``/search`` JSON API over a ``SimulatedWeb``.

    Constructor: ``FakeSearxng(web, *, host="127.0.0.1", port=0, latency_s=0.0,
    fail_with=None, results_per_page=10)``. Attributes (change them in tests; ``reset()``
    restores them): ``latency_s``, ``fail_with`` (HTTP status or None), ``inject_results``
    (results put first on page 1 of every query), ``queries`` (``ReceivedQuery`` log),
    ``base_url`` (``http://host:port``, no trailing slash), ``bm25`` (the ``BM25Okapi``),
    ``index_build_s``. Methods:
    ``search(q, pageno=1)`` (the JSON payload, no HTTP), ``start()``/``stop()``/``with``,
    ``reset()``.
    """

    def __init__(
        self,
        web: SimulatedWeb,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        fail_with: int | None = None,
        results_per_page: int = 10,
    ) -> None:
        """Build the BM25 index over ``web.pages`` (about 0.5 s) and prepare the server."""
        self.web = web
        self.latency_s = latency_s
        self.fail_with = fail_with
        self.results_per_page = results_per_page
        self.inject_results: list[SearchResult] = []
        self.queries: list[ReceivedQuery] = []
        self._defaults = (latency_s, fail_with)
        started = time.perf_counter()
        self.bm25 = BM25Okapi([words(f"{p['title']} {p['text']}") for p in web.pages])
        self._postings = _Postings(self.bm25)
        self.index_build_s = time.perf_counter() - started
        self.server = ServerThread(self, host, port, name="searxng")

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``: give the engine this as its SearXNG instance URL."""
        return self.server.base_url

    def reset(self) -> None:
        """Clear the query log and injected results; restore latency and failure mode."""
        self.queries.clear()
        self.inject_results.clear()
        self.latency_s, self.fail_with = self._defaults

    def search(self, q: str, pageno: int = 1) -> dict[str, Any]:
        """The JSON payload SearXNG would return for ``q`` and ``pageno`` (web must be started)."""
        terms = words(q)
        scores = self._postings.scores(terms)
        matching = int(np.count_nonzero(scores > 0))
        order = np.argsort(-scores, kind="stable")[:matching]
        first = (max(pageno, 1) - 1) * self.results_per_page
        results: list[SearchResult] = []
        if first == 0:
            results.extend(self.inject_results)
        for position, index in enumerate(order[first : first + self.results_per_page], first + 1):
            page = self.web.pages[int(index)]
            published = page["published"]
            results.append(
                SearchResult(
                    url=self.web.url_for(page["site"], page["path"]),
                    title=page["title"],
                    content=snippet(page["text"], terms),
                    publishedDate=f"{published}T00:00:00" if published else None,
                    engine="fake",
                    engines=["fake"],
                    positions=[position],
                    category="general",
                    score=round(float(scores[index]), 4),
                )
            )
        return {
            "query": q,
            "number_of_results": matching + len(self.inject_results),
            "results": results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``/search`` (GET or POST form), ``/healthz``; 404 otherwise."""
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        body = await read_body(receive)
        if path == "/healthz":
            await send_bytes(send, 200, b"OK", [("content-type", "text/plain")])
            return
        if path != "/search":
            await send_bytes(send, 404, b"Not Found", [("content-type", "text/plain")])
            return
        if method not in ("GET", "POST"):
            await send_bytes(send, 405, b"Method Not Allowed", [("allow", "GET, POST")])
            return
        raw = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        if method == "POST":
            for key, values in parse_qs(body.decode("utf-8", "replace")).items():
                raw.setdefault(key, values)
        params = {key: values[-1] for key, values in raw.items()}
        try:
            pageno = int(params.get("pageno", "1"))
        except ValueError:
            pageno = 1
        fmt = params.get("format", "html")
        q = params.get("q", "")
        self.queries.append(
            ReceivedQuery(method=method, q=q, format=fmt, pageno=pageno, params=params)
        )

        if not await pause(self.latency_s, receive, self.server.stopping):
            return
        status = self.fail_with
        if status is not None:
            text = _FAILURE_TEXT.get(status, b"Internal Server Error")
            await send_bytes(send, status, text, [("content-type", "text/plain")])
        elif fmt != "json":
            await send_bytes(send, 403, b"Forbidden", [("content-type", "text/plain")])
        elif not q.strip():
            await send_json(send, 400, {"error": "search query is empty"})
        else:
            await send_json(send, 200, self.search(q, pageno))
