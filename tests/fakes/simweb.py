"""The simulated web: the corpus pages served on 127.0.0.2-.6, one shared port.

A page ``{"site": N, "path": P, ...}`` of ``pages.jsonl.gz`` is served at
``http://127.0.0.N:<port>P`` with ``content-type: text/html; charset=utf-8``; anything else is a
404. Site 6 has no corpus pages: tests register hostile responses there (or anywhere) with
``add_page``. Optional per-URL latency (``latency``, see ``lognormal_latency``) and gzip when the
client accepts it. The corpus directory is ``<repo>/../shared/data/webcorpus`` unless
``FOOTNOTE_WEBCORPUS`` says otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import NotRequired, TypedDict, cast
from urllib.parse import unquote, urlsplit

from tests.fakes.server import (
    Receive,
    Scope,
    Send,
    ServedFake,
    ServerThread,
    header,
    pause,
    send_bytes,
)

__all__ = [
    "SITES",
    "Page",
    "Question",
    "SimulatedWeb",
    "default_corpus_dir",
    "load_pages",
    "load_questions",
    "lognormal_latency",
]

SITES = (2, 3, 4, 5, 6)
HTML = "text/html; charset=utf-8"
_GZIP_MIN_BYTES = 1024

LatencyFn = Callable[[str], float]


class Page(TypedDict):
    """One line of ``pages.jsonl.gz``."""

    site: int
    path: str
    title: str
    html: str
    text: str
    published: str | None
    origin: str
    topic_title: NotRequired[str]


class Question(TypedDict):
    """One line of ``questions.jsonl`` (the fields the tests and benchmarks use)."""

    id: str
    source: str
    question: str
    answers: list[str]
    answerable: bool
    gold_pages: list[str]
    gold_sentences: list[str]
    gold_sentences_kind: str
    gold_titles: list[str]
    gold_paragraphs: list[str]
    side: NotRequired[str]


def default_corpus_dir() -> Path:
    """``$FOOTNOTE_WEBCORPUS`` if set, else ``shared/data/webcorpus`` beside the repository."""
    env = os.environ.get("FOOTNOTE_WEBCORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared/data/webcorpus"


def load_pages(corpus_dir: Path | None = None) -> list[Page]:
    """Read every page of ``pages.jsonl.gz`` (about 0.4 s for the 2,126 pages)."""
    path = (corpus_dir or default_corpus_dir()) / "pages.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [cast(Page, json.loads(line)) for line in fh if line.strip()]


def load_questions(corpus_dir: Path | None = None) -> list[Question]:
    """Read every question of ``questions.jsonl``."""
    path = (corpus_dir or default_corpus_dir()) / "questions.jsonl"
    with path.open(encoding="utf-8") as fh:
        return [cast(Question, json.loads(line)) for line in fh if line.strip()]


def lognormal_latency(
    median_s: float = 0.05,
    sigma: float = 0.8,
    *,
    hang_fraction: float = 0.0,
    hang_s: float = 60.0,
    seed: int = 0,
) -> LatencyFn:
    """A deterministic per-URL latency for benchmarks: lognormal, plus a fraction that hangs.

    The same URL always gets the same delay (seeded by a hash of ``seed`` and the URL), so runs
    are comparable; ``hang_fraction`` of URLs wait ``hang_s`` seconds instead.
    """

    def latency(url: str) -> float:
        digest = hashlib.blake2b(f"{seed}:{url}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))  # not for security
        if rng.random() < hang_fraction:
            return hang_s
        return median_s * math.exp(sigma * rng.gauss(0.0, 1.0))

    return latency


@dataclass(frozen=True)
class _Response:
    """A registered extra response (``add_page``)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    chunk_size: int | None = None
    chunk_delay_s: float = 0.0


@dataclass
class _Cache:
    """Encoded (and gzipped) corpus bodies, filled lazily by the server thread."""

    plain: dict[int, bytes] = field(default_factory=dict)
    gzipped: dict[int, bytes] = field(default_factory=dict)


class SimulatedWeb(ServedFake):
    """The corpus pages served over HTTP on ``127.0.0.<site>:<port>`` for sites 2-6.

    Constructor: ``SimulatedWeb(corpus_dir=None, *, port=0, latency=None, gzip=True,
    pages=None)``. Attributes: ``pages`` (list of ``Page``), ``latency`` (``(url) -> seconds``
    or None), ``gzip`` (compress when the client accepts it), ``requests`` (URLs served, in
    order). Methods: ``start()``/``stop()`` (or ``with``), ``url_for(site, path)``,
    ``url_for_path(path)``, ``page_by_url(url)``, ``page_by_path(path)``, ``add_page(...)``,
    ``reset()``.
    """

    def __init__(
        self,
        corpus_dir: Path | None = None,
        *,
        port: int = 0,
        latency: LatencyFn | None = None,
        gzip: bool = True,
        pages: Sequence[Page] | None = None,
    ) -> None:
        """Load the corpus (or use ``pages``) and prepare the server; call ``start()``."""
        self.pages: list[Page] = list(pages) if pages is not None else load_pages(corpus_dir)
        self.latency = latency
        self.gzip = gzip
        self.requests: list[str] = []
        self._defaults = (latency, gzip)
        self._by_key: dict[tuple[int, str], int] = {}
        self._by_unquoted: dict[tuple[int, str], int] = {}
        self._by_path: dict[str, int] = {}
        for index, page in enumerate(self.pages):
            self._by_key[(page["site"], page["path"])] = index
            self._by_unquoted.setdefault((page["site"], unquote(page["path"])), index)
            self._by_path.setdefault(page["path"], index)
        self._extra: dict[tuple[int, str], _Response] = {}
        self._lock = threading.Lock()
        self._cache = _Cache()
        self.server = ServerThread(self, [f"127.0.0.{site}" for site in SITES], port, name="simweb")

    # --- lookups -------------------------------------------------------------------------

    def url_for(self, site: int, path: str) -> str:
        """``http://127.0.0.<site>:<port><path>`` (the server must be started)."""
        return f"http://127.0.0.{site}:{self.port}{path}"

    def url_for_path(self, path: str) -> str:
        """The URL of the corpus page with this ``path`` (paths are unique across sites)."""
        return self.url_for(self.pages[self._by_path[path]]["site"], path)

    def page_by_path(self, path: str) -> Page | None:
        """The corpus page with this ``path``, or None."""
        index = self._by_path.get(path)
        return None if index is None else self.pages[index]

    def page_by_url(self, url: str) -> Page | None:
        """The corpus page served at ``url`` (raw or percent-decoded path), or None."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host.startswith("127.0.0.") or parts.port != self.port:
            return None
        try:
            site = int(host.rsplit(".", 1)[1])
        except ValueError:
            return None
        index = self._lookup(site, parts.path or "/")
        return None if index is None else self.pages[index]

    def _lookup(self, site: int, raw_path: str) -> int | None:
        index = self._by_key.get((site, raw_path))
        if index is None:
            index = self._by_unquoted.get((site, unquote(raw_path)))
        return index

    # --- test hooks ----------------------------------------------------------------------

    def add_page(
        self,
        site: int,
        path: str,
        body: bytes,
        content_type: str = HTML,
        headers: Mapping[str, str] | None = None,
        *,
        status: int = 200,
        chunk_size: int | None = None,
        chunk_delay_s: float = 0.0,
    ) -> str:
        """Register an extra response at ``(site, path)`` (raw path); returns its URL.

        It overrides a corpus page at the same place. ``headers`` are sent as given (e.g.
        ``content-encoding`` for a gzip bomb, ``location`` with ``status=302``); ``chunk_size``
        with ``chunk_delay_s`` sends the body in timed pieces (a slow drip). Never gzipped.
        """
        extra = tuple((headers or {}).items())
        response = _Response(
            status=status,
            body=body,
            headers=(("content-type", content_type), *extra),
            chunk_size=chunk_size,
            chunk_delay_s=chunk_delay_s,
        )
        with self._lock:
            self._extra[(site, path)] = response
        return self.url_for(site, path)

    def reset(self) -> None:
        """Forget extra pages and the request log; restore the constructor's latency and gzip."""
        with self._lock:
            self._extra.clear()
        self.requests.clear()
        self.latency, self.gzip = self._defaults

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request: extra response, corpus page or 404."""
        if scope["type"] != "http":
            return
        method = scope["method"]
        head = method == "HEAD"
        host, port = scope["server"][0], scope["server"][1]
        site = int(host.rsplit(".", 1)[1])
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        url = f"http://{host}:{port}{raw_path}" + (f"?{query}" if query else "")
        self.requests.append(url)

        if self.latency is not None and not await pause(
            self.latency(url), receive, self.server.stopping
        ):
            return
        if method not in ("GET", "HEAD"):
            await _send(send, 405, b"method not allowed\n", [("allow", "GET, HEAD")], head)
            return
        with self._lock:
            extra = self._extra.get((site, raw_path))
        if extra is not None:
            await self._send_extra(send, receive, extra, head)
            return
        index = self._lookup(site, raw_path)
        if index is None:
            body = b"<!doctype html><title>404 Not Found</title><h1>Not Found</h1>\n"
            await _send(send, 404, body, [("content-type", HTML)], head)
            return
        await self._send_page(scope, send, index, head)

    async def _send_page(self, scope: Scope, send: Send, index: int, head: bool) -> None:
        page = self.pages[index]
        body = self._cache.plain.get(index)
        if body is None:
            body = self._cache.plain[index] = page["html"].encode("utf-8")
        headers = [("content-type", HTML), ("vary", "accept-encoding")]
        if page["published"]:
            stamp = datetime.fromisoformat(page["published"]).replace(tzinfo=UTC)
            headers.append(("last-modified", format_datetime(stamp, usegmt=True)))
        if self.gzip and len(body) >= _GZIP_MIN_BYTES and _accepts_gzip(scope):
            packed = self._cache.gzipped.get(index)
            if packed is None:
                packed = self._cache.gzipped[index] = gzip.compress(body, 6, mtime=0)
            body = packed
            headers.append(("content-encoding", "gzip"))
        await _send(send, 200, body, headers, head)

    async def _send_extra(self, send: Send, receive: Receive, extra: _Response, head: bool) -> None:
        if not extra.chunk_size or head:
            await _send(send, extra.status, extra.body, list(extra.headers), head)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.headers]
        await send({"type": "http.response.start", "status": extra.status, "headers": raw})
        body = extra.body
        for start in range(0, len(body), extra.chunk_size):
            piece = body[start : start + extra.chunk_size]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if not await pause(extra.chunk_delay_s, receive, self.server.stopping):
                return
            if self.server.stopping.is_set():
                break
        await send({"type": "http.response.body", "body": b""})


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[str, str]], head: bool
) -> None:
    await send_bytes(send, status, body, headers, head=head)


def _accepts_gzip(scope: Scope) -> bool:
    """Whether ``accept-encoding`` lists gzip with a non-zero quality."""
    value = header(scope, "accept-encoding") or ""
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            try:
                return not params or float(quality) > 0
            except ValueError:
                return True
    return False
