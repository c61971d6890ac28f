"""The process-pool offload: same documents as in-thread extraction, crash recovery, clean stop.

One two-worker pool serves the whole module (worker start-up is the slow part); the
extractors below are defined at module level so that workers can unpickle them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.errors import RetrievalError
from retrieval.extract import TrafilaturaExtractor
from retrieval.pipeline import Offload, timed_extract
from retrieval.types import Document, Page
from retrieval.workers import ProcessOffload, WorkerCrashed
from tests.fakes.simweb import load_pages

CRASH = b"os._exit please"


class CrashingExtractor:
    """Kills its worker process on the sentinel page, as a segfaulting parser would."""

    def extract(self, page: Page) -> Document | None:
        if page.body == CRASH:
            os._exit(3)
        return Document(url=page.final_url, title="ok", text=page.body.decode())


class SlowExtractor:
    """Sleeps, then leaves a marker file per page it really ran."""

    def __init__(self, marker_dir: Path, delay_s: float) -> None:
        self.marker_dir = marker_dir
        self.delay_s = delay_s

    def extract(self, page: Page) -> Document | None:
        time.sleep(self.delay_s)
        (self.marker_dir / page.url.rsplit("/", 1)[-1]).touch()
        return None


def text_page(url: str, body: bytes) -> Page:
    return Page(url=url, final_url=url, status=200, content_type="text/plain", body=body)


@pytest.fixture(scope="module")
def offload() -> Iterator[ProcessOffload]:
    pool = ProcessOffload(workers=2)
    asyncio.run(pool.start())
    yield pool
    asyncio.run(pool.aclose())


@pytest.fixture(scope="module")
def corpus_pages() -> list[Page]:
    """Three real saved pages (site 5) and three templated wiki pages (site 2)."""
    chosen: list[Page] = []
    counts = {2: 0, 5: 0}
    for item in load_pages():
        site = item["site"]
        if site in counts and counts[site] < 3:
            counts[site] += 1
            url = f"http://127.0.0.{site}{item['path']}"
            body = item["html"].encode("utf-8")
            chosen.append(Page(url=url, final_url=url, status=200, content_type=HTML, body=body))
    return chosen


HTML = "text/html"


def test_is_an_offload(offload: ProcessOffload) -> None:
    typed: Offload = offload
    assert typed is offload


@pytest.mark.anyio
async def test_workers_extract_exactly_what_a_thread_does(
    offload: ProcessOffload, corpus_pages: list[Page]
) -> None:
    extractor = TrafilaturaExtractor()
    results = await asyncio.gather(*(offload(extractor, page) for page in corpus_pages))
    for page, (doc, cpu_s) in zip(corpus_pages, results, strict=True):
        expected, _ = timed_extract(extractor, page)
        assert doc is not None
        assert doc == expected
        assert 0 < cpu_s < 5


@pytest.mark.anyio
async def test_extractor_errors_reach_the_caller(offload: ProcessOffload) -> None:
    page = text_page("http://x/boom", b"\xff")
    with pytest.raises(UnicodeDecodeError):
        await offload(CrashingExtractor(), page)
    doc, _ = await offload(CrashingExtractor(), text_page("http://x/fine", b"fine"))
    assert doc is not None and doc.text == "fine"


@pytest.mark.anyio
async def test_a_dead_worker_costs_one_page_and_the_pool_recovers(
    offload: ProcessOffload,
) -> None:
    before = set(offload._pool._processes)
    with pytest.raises(WorkerCrashed, match="died on http://x/crash"):
        await offload(CrashingExtractor(), text_page("http://x/crash", CRASH))
    doc, _ = await offload(CrashingExtractor(), text_page("http://x/after", b"still here"))
    assert doc is not None and doc.text == "still here"
    assert not before & set(offload._pool._processes), "a new pool with new workers"


@pytest.mark.anyio
async def test_cancelled_calls_leave_the_queue(offload: ProcessOffload, tmp_path: Path) -> None:
    slow = SlowExtractor(tmp_path, delay_s=0.2)
    calls = [
        asyncio.create_task(offload(slow, text_page(f"http://x/{i}", b"z"))) for i in range(12)
    ]
    await asyncio.sleep(0.05)
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    # Work already handed to the workers finishes; the rest of the queue is dropped.
    await offload(slow, text_page("http://x/last", b"z"))
    ran = {p.name for p in tmp_path.iterdir()} - {"last"}
    assert len(ran) <= 2 + 3, ran  # running + the executor's pre-fed call queue


@pytest.mark.anyio
async def test_close_stops_every_worker() -> None:
    pool = ProcessOffload(workers=2)
    async with pool:
        processes = list(pool._pool._processes.values())
        assert len(processes) == 2
        doc, _ = await pool(CrashingExtractor(), text_page("http://x/a", b"a"))
        assert doc is not None
    assert all(not p.is_alive() for p in processes)
    for p in processes:
        assert p.pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(p.pid, 0)
    await pool.aclose()  # idempotent
    with pytest.raises(RetrievalError, match="closed"):
        await pool(CrashingExtractor(), text_page("http://x/b", b"b"))


def test_rejects_an_empty_pool() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProcessOffload(workers=0)
