"""``LocalIndex``: search provider *and* fetcher over the on-disk index of private documents.

Search is one FTS5 ``MATCH`` (the question's terms, planned by ``retrieval.index.query``)
ordered by BM25 with the title weighted higher; the snippet is the paragraph of the
document holding most of the question's words. Fetching one of the index's URLs returns
the stored clean text as a page of type ``INDEX_CONTENT_TYPE`` (no network, no HTML to
extract): ``IndexedExtractor`` turns it back into the ``Document`` with ``internal=True``.
The SSRF-guarded HTTP fetcher accepts no such type, so a web page can never pass itself
off as an internal document.

SQLite calls are synchronous: each runs in a worker thread (``anyio.to_thread``) on a
connection of a small pool, at most ``readers`` at once, so the event loop never waits
on the disk.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
import msgspec

from retrieval.errors import FetchError, SearchUnavailable
from retrieval.index.query import common_threshold, plan_expression, query_terms, quote
from retrieval.index.schema import connect
from retrieval.protocols import Extractor
from retrieval.types import Document, Page, SearchHit

T = TypeVar("T")

INDEX_CONTENT_TYPE = "application/vnd.footnote.document+json"
# Ranking alone: FTS5's snippet() costs ~1 ms a row on long documents, so snippets are cut
# in Python from the bodies of the rows returned (``snippet``), a tenth of that.
_RANK_SQL = "SELECT rowid FROM documents_fts WHERE documents_fts MATCH ? ORDER BY rank LIMIT ?"
_ROWS_SQL = "SELECT id, url, title, body, published FROM documents WHERE id = ?"
_SNIPPET_CHARS = 240
_WORD = re.compile(r"[^\W_]+")
# Query and text words meet on their first letters: a cheap stand-in for the index's stemmer.
_PREFIX = 5
_DOCUMENT_SQL = (
    "SELECT url, title, body, published FROM documents WHERE url = ? ORDER BY id LIMIT 1"
)


class LocalIndex:
    """``SearchProvider`` and ``Fetcher`` over the SQLite index at ``path`` (see module doc)."""

    name = "local"

    def __init__(self, path: str | Path, *, readers: int = 4, create: bool = True) -> None:
        """Open (and with ``create``, create) the index; ``readers`` bounds parallel queries."""
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.path = Path(path)
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._limiter = anyio.CapacityLimiter(readers)
        # Opening the first connection creates or checks the schema, so errors show at once.
        self._idle.put(self._open(create=create))

    def _open(self, *, create: bool = False) -> sqlite3.Connection:
        conn = connect(self.path, create=create)
        with self._lock:
            self._all.append(conn)
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on an idle connection (opening one if none is idle)."""
        if self._closed:
            raise sqlite3.ProgrammingError("the local index is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
        try:
            return work(conn)
        finally:
            self._idle.put(conn)

    async def _in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._run, work, limiter=self._limiter)

    # --- search ------------------------------------------------------------------------

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return at most ``limit`` documents matching ``query``, best BM25 first.

        Raises ``SearchUnavailable`` when the index cannot be read.
        """
        try:
            return await self._in_thread(lambda c: _search(c, query, limit))
        except sqlite3.Error as exc:
            raise SearchUnavailable(f"local index {self.path}: {exc}") from exc

    def search_sync(self, query: str, *, limit: int) -> list[SearchHit]:
        """Synchronous ``search`` (for benchmarks and scripts; blocks the calling thread)."""
        try:
            return self._run(lambda c: _search(c, query, limit))
        except sqlite3.Error as exc:
            raise SearchUnavailable(f"local index {self.path}: {exc}") from exc

    async def ready(self) -> None:
        """Return when the index answers a query; ``SearchUnavailable`` when it cannot."""
        try:
            await self._in_thread(lambda c: c.execute("SELECT count(*) FROM meta").fetchone())
        except sqlite3.Error as exc:
            raise SearchUnavailable(f"local index {self.path}: {exc}") from exc

    # --- fetch -------------------------------------------------------------------------

    async def lookup(self, url: str) -> Page | None:
        """The stored page for ``url``, or ``None`` when the index has no such document."""
        try:
            doc = await self._in_thread(lambda c: _document(c, url))
        except sqlite3.Error as exc:
            raise FetchError("index_error", f"local index {self.path}: {exc}") from exc
        return None if doc is None else as_page(doc)

    async def fetch(self, url: str) -> Page:
        """Return the stored page for one of the index's URLs, without any network.

        Raises ``FetchError("http_status")`` for any other URL, as a 404 would.
        """
        page = await self.lookup(url)
        if page is None:
            raise FetchError("http_status", f"not in the local index: {url}")
        return page

    def document_sync(self, url: str) -> Document | None:
        """The stored document for ``url`` (synchronous), or ``None``."""
        return self._run(lambda c: _document(c, url))

    def count(self) -> int:
        """How many documents the index holds (synchronous)."""
        return self._run(lambda c: int(c.execute("SELECT count(*) FROM documents").fetchone()[0]))

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection; later calls fail."""
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            _STATS.pop(id(conn), None)
            conn.close()

    async def aclose(self) -> None:
        """``close`` for the services' closers."""
        self.close()


class _Stats:
    """Per-connection counts for query planning, valid while the database is unchanged."""

    def __init__(self, version: int, total: int) -> None:
        self.version = version
        self.total = total
        self.df: dict[str, int] = {}


_STATS: dict[int, _Stats] = {}
_DF_SQL = "SELECT count(*) FROM (SELECT 1 FROM documents_fts WHERE documents_fts MATCH ? LIMIT ?)"


def _stats(conn: sqlite3.Connection) -> _Stats:
    # data_version changes when another connection commits: the counts are stale then.
    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
    stats = _STATS.get(id(conn))
    if stats is None or stats.version != version:
        total = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
        stats = _Stats(version, total)
        _STATS[id(conn)] = stats
    return stats


def _document_frequencies(conn: sqlite3.Connection, terms: list[str]) -> tuple[dict[str, int], int]:
    """Document frequency of each term, counted only up to just past the common threshold."""
    stats = _stats(conn)
    cap = common_threshold(stats.total) + 1
    for term in terms:
        if term not in stats.df:
            if len(stats.df) > 50_000:
                stats.df.clear()
            stats.df[term] = int(conn.execute(_DF_SQL, (quote(term), cap)).fetchone()[0])
    return {t: stats.df[t] for t in terms}, stats.total


def _search(conn: sqlite3.Connection, query: str, limit: int) -> list[SearchHit]:
    terms = query_terms(query)
    if not terms or limit < 1:
        return []
    df, total = _document_frequencies(conn, terms)
    expression = plan_expression(terms, df, total)
    if expression is None:
        return []
    ids = [row[0] for row in conn.execute(_RANK_SQL, (expression, limit))]
    wanted = {t[:_PREFIX] for t in terms}
    hits = []
    for rowid in ids:
        row = conn.execute(_ROWS_SQL, (rowid,)).fetchone()
        if row is None:  # deleted between the two reads (another connection's commit)
            continue
        _, url, title, body, published = row
        hits.append(
            SearchHit(
                url=url,
                title=title,
                snippet=snippet(body, wanted, title=title),
                published=published,
                engine=LocalIndex.name,
                internal=True,
            )
        )
    return hits


def snippet(body: str, wanted: set[str], size: int = _SNIPPET_CHARS, title: str = "") -> str:
    """The paragraph of ``body`` holding most ``wanted`` word prefixes, cut around the first.

    A paragraph repeating the ``title`` is passed over, and a short one runs on into the
    next. Substring tests on the lower-cased text of each paragraph (C speed; a regex
    alternation was 5x slower on long articles); only the first 200 KB are looked at.
    Folding diacritics in Python would cost ~20x the search itself: a snippet that misses
    an accented word is still a fair snippet.
    """
    paragraphs = body[:200_000].split("\n\n")
    skip = title.strip().lower()
    best, best_score, best_at = 0, -1, 0
    for index, paragraph in enumerate(paragraphs):
        lowered = paragraph.lower()
        if lowered == skip and len(paragraphs) > 1:
            continue
        found = [at for w in wanted if (at := lowered.find(w)) >= 0]
        if len(found) > best_score:
            best, best_score = index, len(found)
            best_at = min(found, default=0) if len(lowered) == len(paragraph) else 0
    text = paragraphs[best]
    for following in paragraphs[best + 1 :]:
        if len(text) >= size // 2:
            break
        text += " " + following
    return _cut(text, best_at, size)


def _cut(text: str, at: int, size: int) -> str:
    """About ``size`` characters of ``text`` around offset ``at``, cut at spaces."""
    if len(text) <= size:
        return text
    start = max(0, at - size // 4)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 < space < at else start
    end = start + size
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    cut = text[start:end].strip(" ,;:")
    return ("\u2026" if start else "") + cut + ("\u2026" if end < len(text) else "")


def _document(conn: sqlite3.Connection, url: str) -> Document | None:
    row = conn.execute(_DOCUMENT_SQL, (url,)).fetchone()
    if row is None:
        return None
    return Document(url=row[0], title=row[1], text=row[2], published=row[3], internal=True)


def as_page(doc: Document) -> Page:
    """``doc`` as a fetched page of type ``INDEX_CONTENT_TYPE`` (see ``IndexedExtractor``)."""
    return Page(
        url=doc.url,
        final_url=doc.url,
        status=200,
        content_type=INDEX_CONTENT_TYPE,
        body=msgspec.json.encode(doc),
        charset="utf-8",
    )


_DOCUMENT_DECODER = msgspec.json.Decoder(Document)


class IndexedExtractor:
    """``Extractor`` reading the index's own pages back; every other page goes to ``inner``.

    Picklable (it holds only ``inner``), so it runs in the extraction process pool too.
    """

    def __init__(self, inner: Extractor) -> None:
        self.inner = inner

    def extract(self, page: Page) -> Document | None:
        """The stored ``Document`` of an index page, else ``inner.extract(page)``."""
        if page.content_type == INDEX_CONTENT_TYPE:
            doc = _DOCUMENT_DECODER.decode(page.body)
            return msgspec.structs.replace(doc, internal=True)
        return self.inner.extract(page)
