"""Fill an empty index with the bundled demo corpus, so the offline default answers something.

The 353 pages of ``retrieval/data/bundled.jsonl.gz`` go in with their clean text and the
URLs the server serves them at (``{base_url}/corpus/{site}{path}``). Their sources start
with ``bundled:``; ``ingest`` removes them once it stores documents of the user's own.
"""

from __future__ import annotations

import os
import sqlite3
import time

from retrieval.extract import normalise_blocks
from retrieval.index.ingestion import IngestReport
from retrieval.index.schema import BUNDLED_SOURCE, writing
from retrieval.search.bundled import (
    ROUTE_PREFIX,
    CorpusPage,
    default_data_path,
    read_pages,
    route_for,
)


def seed_bundled(
    index_path: str | os.PathLike[str],
    base_url: str,
    pages: list[CorpusPage] | None = None,
) -> IngestReport:
    """Seed the index with the bundled corpus when it holds no document of the user's.

    Already seeded with the same ``base_url``: nothing to do (``unchanged``). Seeded under
    another base URL (the server moved): the demo documents are replaced so their links
    open. An index with documents of its own is left alone.
    """
    started = time.perf_counter()
    base = base_url.rstrip("/")
    with writing(index_path) as conn:
        # Checked under the write lock: server workers starting together seed only once.
        conn.execute("BEGIN IMMEDIATE")
        own = conn.execute(
            "SELECT count(*) FROM documents WHERE substr(source, 1, ?) != ?",
            (len(BUNDLED_SOURCE), BUNDLED_SOURCE),
        ).fetchone()[0]
        seeded = conn.execute(
            "SELECT count(*), count(DISTINCT base_url), max(base_url) FROM documents"
            " WHERE substr(source, 1, ?) = ?",
            (len(BUNDLED_SOURCE), BUNDLED_SOURCE),
        ).fetchone()
        if own:
            conn.execute("COMMIT")
            return _report(started, conn)
        corpus = pages if pages is not None else read_pages(default_data_path())
        if seeded[0] == len(corpus) and seeded[1] == 1 and seeded[2] == base:
            conn.execute("COMMIT")
            return _report(started, conn, unchanged=seeded[0])
        removed = conn.execute(
            "DELETE FROM documents WHERE substr(source, 1, ?) = ?",
            (len(BUNDLED_SOURCE), BUNDLED_SOURCE),
        ).rowcount
        cursor = conn.executemany(
            "INSERT OR IGNORE INTO documents (source, url, title, body, published, kind,"
            " base_url) VALUES (?, ?, ?, ?, ?, 'html', ?)",
            (
                (
                    BUNDLED_SOURCE + route_for(page),
                    base + ROUTE_PREFIX + route_for(page),
                    page.title,
                    normalise_blocks(page.text.split("\n\n")),
                    page.published,
                    base,
                )
                for page in corpus
            ),
        )
        conn.execute("COMMIT")
        return _report(started, conn, added=cursor.rowcount, removed=removed)


def _report(
    started: float,
    conn: sqlite3.Connection,
    *,
    added: int = 0,
    removed: int = 0,
    unchanged: int = 0,
) -> IngestReport:
    total = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    return IngestReport(
        added=added,
        removed=removed,
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
        documents=total,
    )
