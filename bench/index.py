"""The ``index`` sub-benchmark: the local index (SQLite FTS5) at 1k, 10k and 100k documents.

Documents are written as real files to a temporary folder, so ``ingest`` is measured as
the CLI runs it (walk, stat, read, hash, parse, insert): the 2,126 pages of the webcorpus,
then variants of them to reach the size asked for. A third of the files are the page's
HTML (its ``<title>`` marked with the variant number, so the bytes differ), a third
Markdown and a third plain text of its clean text, with the paragraphs of every variant
after the first shuffled (seeded). Then, over the webcorpus's 600 dev questions:
query latency of ``LocalIndex.search_sync`` (p50/p95, limit 10) and of the async
``search`` (through the worker thread), and the share of questions with a gold page's
title among the first ten hits. A second ``ingest`` of the unchanged folder measures the
incremental check alone.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench.report import fmt, table
from retrieval.index import LocalIndex, ingest, seed_bundled

WEBCORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "webcorpus"
DEFAULT_SIZES = (1_000, 10_000)


@dataclass(frozen=True)
class IndexRun:
    """Figures of one index size."""

    documents: int
    files_mb: float
    build_s: float
    docs_per_s: float
    reingest_s: float
    index_mb: float
    query_p50_ms: float
    query_p95_ms: float
    query_cpu_p50_ms: float
    async_p50_ms: float
    gold_at_10: float
    queries: int


def load_pages(path: Path = WEBCORPUS / "pages.jsonl.gz") -> list[dict[str, Any]]:
    """The webcorpus pages (site, path, title, html, text)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_questions(path: Path = WEBCORPUS / "questions.jsonl") -> list[dict[str, Any]]:
    """The webcorpus questions (question, gold_titles, ...)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_documents(pages: Sequence[dict[str, Any]], count: int, root: Path) -> int:
    """Write ``count`` document files under ``root`` (see the module doc); returns bytes."""
    rng = random.Random(0)
    written = 0
    for i in range(count):
        page = pages[i % len(pages)]
        variant = i // len(pages)
        folder = root / f"site{page['site']}" / f"v{variant:03}"
        if i % len(pages) == 0 or i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        name = page["path"].strip("/").replace("/", "_")[:120] or f"page{i}"
        paragraphs = page["text"].split("\n\n")
        if variant:
            rng.shuffle(paragraphs)
        kind = i % 3
        if kind == 0:
            html = (
                page["html"].replace("<title>", f"<title>[{variant}] ", 1)
                if variant
                else page["html"]
            )
            data = html.encode("utf-8")
            target = folder / f"{name}.html"
        elif kind == 1:
            data = (f"# {page['title']}\n\n" + "\n\n".join(paragraphs) + "\n").encode("utf-8")
            target = folder / f"{name}.md"
        else:
            data = (page["title"] + "\n\n" + "\n\n".join(paragraphs) + "\n").encode("utf-8")
            target = folder / f"{name}.txt"
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written += len(data)
    return written


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _folded(title: str) -> str:
    return " ".join(title.lower().split())


def measure_queries(
    index: LocalIndex, questions: Sequence[dict[str, Any]]
) -> tuple[list[float], list[float], list[float], float]:
    """Sync wall, sync CPU and async latencies (ms) of every question, and gold@10."""
    for q in questions[:20]:  # warm the page cache and the connection pool
        index.search_sync(q["question"], limit=10)
    sync_ms: list[float] = []
    cpu_ms: list[float] = []
    found = 0
    for q in questions:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        hits = index.search_sync(q["question"], limit=10)
        sync_ms.append((time.perf_counter() - t0) * 1000)
        cpu_ms.append((time.thread_time() - c0) * 1000)
        gold = {_folded(t) for t in q.get("gold_titles") or []}
        titles = [_folded(h.title) for h in hits]
        if gold and any(any(g in t for g in gold) for t in titles):
            found += 1
    async_ms: list[float] = []

    async def run_async() -> None:
        for q in questions:
            t0 = time.perf_counter()
            await index.search(q["question"], limit=10)
            async_ms.append((time.perf_counter() - t0) * 1000)

    anyio.run(run_async)
    with_gold = sum(1 for q in questions if q.get("gold_titles"))
    return sync_ms, cpu_ms, async_ms, found / with_gold if with_gold else float("nan")


def _size_mb(path: Path) -> float:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            total += candidate.stat().st_size
    return total / 1e6


def run_size(
    pages: Sequence[dict[str, Any]],
    questions: Sequence[dict[str, Any]],
    count: int,
    workers: int | None,
    log: Any,
) -> IndexRun:
    """Write ``count`` files, index them, re-index, query; everything in a temp folder."""
    work = Path(tempfile.mkdtemp(prefix=f"footnote-index-{count}-"))
    try:
        docs = work / "docs"
        log(f"index: writing {count:,} files")
        written = write_documents(pages, count, docs)
        db = work / "index.sqlite3"
        log(f"index: ingesting {count:,} files")
        report = ingest([docs], db, workers=workers)
        again = ingest([docs], db, workers=workers)
        assert again.unchanged == report.added and again.added == 0
        index = LocalIndex(db)
        try:
            log(f"index: {len(questions)} queries at {report.documents:,} documents")
            sync_ms, cpu_ms, async_ms, gold = measure_queries(index, questions)
        finally:
            index.close()
        return IndexRun(
            documents=report.documents,
            files_mb=written / 1e6,
            build_s=report.seconds,
            docs_per_s=report.added / report.seconds if report.seconds else float("nan"),
            reingest_s=again.seconds,
            index_mb=_size_mb(db),
            query_p50_ms=statistics.median(sync_ms),
            query_p95_ms=_percentile(sync_ms, 0.95),
            query_cpu_p50_ms=statistics.median(cpu_ms),
            async_p50_ms=statistics.median(async_ms),
            gold_at_10=gold,
            queries=len(sync_ms),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_seed() -> float:
    """Seconds to seed an empty index with the bundled corpus (the offline start-up cost)."""
    work = Path(tempfile.mkdtemp(prefix="footnote-seed-"))
    try:
        return seed_bundled(work / "index.sqlite3", "http://127.0.0.1:8000").seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def index_section(runs: Sequence[IndexRun], seed_s: float) -> str:
    """The table of the index benchmark."""
    rows = [
        [
            f"{r.documents:,}",
            fmt(r.files_mb, 0),
            fmt(r.build_s, 1),
            fmt(r.docs_per_s, 0),
            fmt(r.reingest_s, 2),
            fmt(r.index_mb, 0),
            fmt(r.query_p50_ms, 1),
            fmt(r.query_p95_ms, 1),
            fmt(r.query_cpu_p50_ms, 1),
            fmt(r.async_p50_ms, 1),
            fmt(r.gold_at_10 * 100, 0),
        ]
        for r in runs
    ]
    body = table(
        [
            "documents",
            "files MB",
            "build s",
            "docs/s",
            "re-ingest s",
            "index MB",
            "query p50 ms",
            "query p95 ms",
            "query CPU p50 ms",
            "async p50 ms",
            "gold@10 %",
        ],
        rows,
    )
    return body + f"\n\nSeeding an empty index with the bundled corpus (353 pages): {seed_s:.2f} s"


def index_notes(workers: int | None) -> list[str]:
    """Lines printed under the table."""
    return [
        "build = ingest() of a fresh folder (walk, read, hash, parse, insert); re-ingest = the "
        "same folder again, unchanged (stat only).",
        f"parsing processes: {workers or os.cpu_count()}; host CPUs: {os.cpu_count()}. "
        "Targets: query p50 <= 20 ms at 100k documents, >= 200 documents/s.",
        "query = LocalIndex.search_sync over the 600 dev questions, limit 10 (wall time; CPU = "
        "this thread's CPU time, less sensitive to a busy host); async = the same "
        "through the worker thread. gold@10 = a gold page's title among the first ten hits "
        "(variants share titles, so deep sizes add near-duplicates).",
    ]


def parse_sizes(spec: str) -> list[int]:
    """``"1000,10000,100000"`` -> sizes, checked."""
    sizes = [int(part.replace("_", "")) for part in spec.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"bad --index-sizes {spec!r}")
    return sizes
