"""The SQLite file of the local index: its schema, pragmas and connections.

One ``documents`` table holds each document's clean text, title, citable URL and the file
signature that makes ingestion incremental (mtime, size, SHA-256, the base URL its URL was
built with). ``documents_fts`` is an FTS5 index over title and text with ``documents`` as
its external content, so the text is stored once; triggers keep the two in step. The
tokenizer folds case and diacritics and stems English (``porter unicode61``); ``rank`` is
BM25 with the title weighted ``TITLE_WEIGHT`` times the body.

WAL mode: one writer (``footnote index``) and any number of readers (the server) work on
the file at once, readers never blocking on the writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = "1"  # also written literally in _SCHEMA
# A term in the title counts this many times one in the body (BM25 column weight).
TITLE_WEIGHT = 4.0
# Sources of documents seeded from the bundled demo corpus start with this.
BUNDLED_SOURCE = "bundled:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published TEXT,
    kind TEXT NOT NULL DEFAULT '',
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS documents_url ON documents (url);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5 (
    title, body,
    content='documents', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE OF title, body ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO documents_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
"""


class NotAnIndex(sqlite3.DatabaseError):
    """The file is not a Footnote index this code can read (another schema version)."""


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A connection for writing: rolled back if the block fails mid-transaction, then closed."""
    conn = connect(path)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def connect(path: str | os.PathLike[str], *, create: bool = True) -> sqlite3.Connection:
    """Open the index at ``path`` (creating file, folders and schema when ``create``).

    The connection may be used from any thread, one at a time (``check_same_thread=False``).
    Raises ``FileNotFoundError`` when ``create`` is false and there is no file.
    """
    target = Path(path)
    if create:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        raise FileNotFoundError(f"no index at {target}")
    conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reads go through the OS page cache without copies; the cap is address space only.
        conn.execute("PRAGMA mmap_size = 268435456")
        conn.execute("PRAGMA cache_size = -32000")
        if create:
            _ensure_schema(conn)
        else:
            _check_version(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta:
        _check_version(conn)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created it between the check and the lock.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            conn.execute("COMMIT")
            _check_version(conn)
            return
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO documents_fts (documents_fts, rank) VALUES ('rank', ?)",
            (f"bm25({TITLE_WEIGHT}, 1.0)",),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_version(conn: sqlite3.Connection) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        found = "none" if row is None else row[0]
        raise NotAnIndex(
            f"not a Footnote index of schema version {SCHEMA_VERSION} (found {found}); "
            "rebuild it with `footnote index`"
        )


def _statements(script: str) -> list[str]:
    """Split the schema into statements, keeping trigger bodies whole."""
    out: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            current = []
    return out
