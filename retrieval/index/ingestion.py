"""``ingest(paths, index_path, base_url=None) -> IngestReport``: files and folders into the index.

Stable API (the ``footnote index PATH...`` CLI calls it)::

    report = ingest(["~/notes", "spec.pdf"], default_index_path(), base_url=None)
    print(report.added, report.updated, report.removed, report.unchanged, report.seconds)

* ``paths``: files and folders (walked recursively; hidden files and folders skipped) of
  HTML (``.html .htm .xhtml``), Markdown (``.md .markdown``), plain text (``.txt .text``)
  and PDF (``.pdf``); other files in a folder are ignored. A path that does not exist
  raises ``FileNotFoundError`` before the index is touched.
* Incremental: a file whose mtime and size match what the index recorded is not read; one
  whose bytes hash the same as before is not parsed again. Files that were indexed under
  one of the given folders and are gone from disk are removed from the index (documents
  under folders not named in this call are left alone).
* URL of each document: the page's ``<link rel="canonical">`` (absolute http/https), else
  ``{base_url}/{path relative to the folder given}`` when ``base_url`` is set, else the
  file's ``file://`` URI.
* The demo documents seeded from the bundled corpus (``seed_bundled``) are removed as soon
  as an ``ingest`` call stores a document of its own.

Parsing runs in ``workers`` processes when many files changed (default: one per CPU);
writes go in transactions of a few hundred documents.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import quote

import msgspec

from retrieval.index.readers import KINDS, FileDocument, kind_of, read_document
from retrieval.index.schema import BUNDLED_SOURCE, writing
from retrieval.workers import default_start_method

# Below this many files to read, a process pool costs more to start than it saves.
POOL_THRESHOLD = 200
BATCH = 1000
MAX_ERRORS = 20


class IngestReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one ``ingest`` call did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    # Files read but holding no text (empty, a scanned PDF) or that could not be read.
    skipped: int = 0
    seconds: float = 0.0
    # Documents in the index afterwards.
    documents: int = 0
    errors: tuple[str, ...] = ()


class _File(msgspec.Struct, frozen=True):
    source: str
    relative: str
    kind: str
    mtime_ns: int
    size: int


class _Row(msgspec.Struct, frozen=True):
    id: int
    mtime_ns: int
    size: int
    sha256: str
    base_url: str


class _Read(msgspec.Struct, frozen=True):
    sha256: str
    document: FileDocument | None = None
    error: str | None = None
    same_bytes: bool = False


def _walk(root: Path) -> Iterator[tuple[str, str, str, os.stat_result]]:
    """Files under ``root`` with a known kind: (path, relative posix path, kind, stat), sorted.

    Plain strings and ``os.scandir`` entries: pathlib objects per file cost more than the
    stat itself on a 100k-file tree.
    """
    top = str(root)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        prefix = os.path.relpath(dirpath, top).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in sorted(filenames):
            kind = KINDS.get(os.path.splitext(name)[1].lower())
            if name.startswith(".") or kind is None:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            yield path, prefix + name, kind, st


def _files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[_File], list[Path]]:
    """Every file to index and the folders given (their stale documents get removed)."""
    found: dict[str, _File] = {}
    folders: list[Path] = []
    roots = [Path(p).expanduser().resolve() for p in paths]
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"no such file or folder: {root}")
    for root in roots:
        if root.is_dir():
            folders.append(root)
            listing: Iterable[tuple[str, str, str, os.stat_result]] = _walk(root)
        else:
            kind = kind_of(root)
            listing = [] if kind is None else [(str(root), root.name, kind, root.stat())]
        for path, relative, kind, st in listing:
            if path not in found:
                found[path] = _File(path, relative, kind, st.st_mtime_ns, st.st_size)
    return list(found.values()), folders


def _read(file: _File, known_sha: str | None) -> _Read:
    """Read and parse one file (runs in a worker process for big batches)."""
    try:
        with open(file.source, "rb") as fh:
            body = fh.read()
    except OSError as exc:
        return _Read(sha256="", error=f"{file.source}: {exc.strerror or exc}")
    sha = hashlib.sha256(body).hexdigest()
    if sha == known_sha:
        return _Read(sha256=sha, same_bytes=True)
    try:
        doc = read_document(body, file.kind, os.path.basename(file.source))
    except Exception as exc:  # one unreadable file must not stop the others
        return _Read(sha256=sha, error=f"{file.source}: {type(exc).__name__}: {exc}")
    return _Read(sha256=sha, document=doc)


def _read_star(args: tuple[_File, str | None]) -> _Read:
    return _read(*args)


def url_for(file_path: str, relative: str, base_url: str | None, canonical: str | None) -> str:
    """The citable URL of a file: canonical, else under ``base_url``, else ``file://``."""
    if canonical:
        return canonical
    if base_url:
        return base_url.rstrip("/") + "/" + quote(relative, safe="/")
    return Path(file_path).as_uri()


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    index_path: str | os.PathLike[str],
    base_url: str | None = None,
    *,
    workers: int | None = None,
) -> IngestReport:
    """Bring the index at ``index_path`` up to date with ``paths`` (see the module doc).

    ``workers``: parsing processes for large batches (default ``os.cpu_count()``; 1 parses
    in this process). Raises ``FileNotFoundError`` for a missing path and
    ``sqlite3.DatabaseError`` when ``index_path`` is not a Footnote index.
    """
    started = time.perf_counter()
    files, folders = _files(paths)
    base = (base_url or "").rstrip("/")
    with writing(index_path) as conn:
        rows = {
            source: _Row(*rest)
            for source, *rest in conn.execute(
                "SELECT source, id, mtime_ns, size, sha256, base_url FROM documents"
            )
        }
        todo: list[tuple[_File, _Row | None]] = []
        unchanged = 0
        touched: set[str] = set()
        for file in files:
            touched.add(file.source)
            row = rows.get(file.source)
            same_signature = row is not None and (row.mtime_ns, row.size) == (
                file.mtime_ns,
                file.size,
            )
            if row is not None and same_signature and row.base_url == base:
                unchanged += 1
            else:
                todo.append((file, row))
        counts = {"added": 0, "updated": 0, "unchanged": unchanged, "skipped": 0, "removed": 0}
        errors: list[str] = []
        results = _parse_all(
            [(f, r.sha256 if r is not None and r.base_url == base else None) for f, r in todo],
            workers,
        )
        pending = 0
        conn.execute("BEGIN IMMEDIATE")
        for (file, row), read in zip(todo, results, strict=True):
            pending += 1
            _store(conn, file, row, read, base, counts, errors)
            if pending >= BATCH:
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
                pending = 0
        gone = [
            row.id
            for source, row in rows.items()
            if source not in touched
            and not source.startswith(BUNDLED_SOURCE)
            and any(_under(source, folder) for folder in folders)
        ]
        if counts["added"] or counts["updated"]:
            gone += [row.id for s, row in rows.items() if s.startswith(BUNDLED_SOURCE)]
        conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in gone])
        counts["removed"] += len(gone)
        conn.execute("COMMIT")
        total = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    return IngestReport(
        **counts,
        seconds=time.perf_counter() - started,
        documents=total,
        errors=tuple(errors[:MAX_ERRORS]),
    )


def _under(source: str, folder: Path) -> bool:
    return source.startswith(str(folder).rstrip(os.sep) + os.sep)


def _parse_all(tasks: list[tuple[_File, str | None]], workers: int | None) -> Iterator[_Read]:
    """Results of ``_read`` for every task, in order; a process pool for large batches."""
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n <= 1 or len(tasks) < POOL_THRESHOLD:
        yield from (_read(f, sha) for f, sha in tasks)
        return
    context = get_context(default_start_method())
    if context.get_start_method() == "forkserver":
        # Workers fork from a server that imported the parsers once, instead of each importing.
        context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
        # map() submits everything at once: in slices, parsed documents never pile up.
        for start in range(0, len(tasks), 2000):
            yield from pool.map(_read_star, tasks[start : start + 2000], chunksize=8)


def _store(
    conn: sqlite3.Connection,
    file: _File,
    row: _Row | None,
    read: _Read,
    base: str,
    counts: dict[str, int],
    errors: list[str],
) -> None:
    """Write one file's outcome: insert, update, drop, or only refresh its signature."""
    if read.same_bytes and row is not None:
        conn.execute(
            "UPDATE documents SET mtime_ns = ?, size = ? WHERE id = ?",
            (file.mtime_ns, file.size, row.id),
        )
        counts["unchanged"] += 1
        return
    doc = read.document
    if doc is None:
        if read.error:
            errors.append(read.error)
        counts["skipped"] += 1
        if row is not None:
            # It had text before and has none now: the old text must not stay searchable.
            conn.execute("DELETE FROM documents WHERE id = ?", (row.id,))
            counts["removed"] += 1
        return
    values = (
        url_for(file.source, file.relative, base or None, doc.canonical),
        doc.title,
        doc.text,
        doc.published,
        file.kind,
        file.mtime_ns,
        file.size,
        read.sha256,
        base,
    )
    if row is None:
        conn.execute(
            "INSERT INTO documents (url, title, body, published, kind, mtime_ns, size, sha256,"
            " base_url, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, file.source),
        )
        counts["added"] += 1
    else:
        conn.execute(
            "UPDATE documents SET url = ?, title = ?, body = ?, published = ?, kind = ?,"
            " mtime_ns = ?, size = ?, sha256 = ?, base_url = ? WHERE id = ?",
            (*values, row.id),
        )
        counts["updated"] += 1
