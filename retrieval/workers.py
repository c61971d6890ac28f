"""Extraction in a process pool: the pipeline's ``Offload`` without the GIL in the way.

trafilatura holds the GIL, so threads give no parallelism; worker processes do (1.7-2.3x on
two cores). ``ProcessOffload`` is a drop-in for ``retrieval.pipeline.thread_offload``::

    offload = ProcessOffload(workers=2)
    await offload.start()            # workers up and warm before the first request
    pipeline = Pipeline(..., offload=offload)
    ...
    await offload.aclose()

Each call pickles the extractor it is given together with the page, so the worker runs
exactly the extractor the pipeline holds, as ``thread_offload`` does; extractors must be
picklable (``TrafilaturaExtractor`` is: a few settings, pickled in microseconds, next to a
page body of ~100 KB). What is expensive per process - importing trafilatura and lxml,
their first-call set-up - is paid once: the forkserver preloads the modules named in
``preload`` and every worker runs one tiny extraction in its initializer.

A worker that dies (segfault in a C parser, out of memory) breaks the whole pool and every
page in flight on it; each of those calls raises ``WorkerCrashed`` (a normal exception the
pipeline counts as one lost page) and the next call gets a fresh pool. A call cancelled
while its page waits in the queue removes it; one already running finishes in its worker.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from retrieval.errors import RetrievalError
from retrieval.extract import TrafilaturaExtractor
from retrieval.protocols import Extractor
from retrieval.types import Document, Page

log = logging.getLogger("footnote.workers")

WARMUP_PAGE = Page(
    url="http://warmup.invalid/",
    final_url="http://warmup.invalid/",
    status=200,
    content_type="text/html",
    body=(
        b"<!doctype html><html><head><title>Warm-up</title></head><body><nav>Menu</nav>"
        b"<article><h1>Warm-up</h1><p>This short article only exists to make each worker"
        b" import and initialise its extraction code before the first real request.</p>"
        b"<p>It has two paragraphs so that the main-text heuristics run as usual.</p>"
        b"</article></body></html>"
    ),
)
# How long start() waits for every worker to come up and answer.
_START_TIMEOUT_S = 60.0
# A ping holds its worker this long, so the other workers get the remaining pings.
_PING_HOLD_S = 0.05


class WorkerCrashed(RetrievalError):
    """A worker process died while this page was queued or being extracted."""


def _init_worker(warmup: Callable[[], Extractor] | None) -> None:
    if warmup is not None:
        warmup().extract(WARMUP_PAGE)


def _ping() -> int:
    time.sleep(_PING_HOLD_S)
    return os.getpid()


def _extract_timed(extractor: Extractor, page: Page) -> tuple[Document | None, float]:
    # The worker runs one task at a time in its main thread: thread time is this page's CPU.
    t0 = time.thread_time()
    doc = extractor.extract(page)
    return doc, time.thread_time() - t0


def default_start_method() -> str:
    """``forkserver`` where the platform has it (cheap, fork-safe worker starts), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


class ProcessOffload:
    """An ``Offload`` running extraction in a pool of ``workers`` processes.

    ``warmup`` builds the extractor each worker runs once on a tiny page at start-up
    (``None``: no warm-up). ``preload`` names modules the forkserver imports once, so
    workers, including replacements after a crash, start without re-importing them; the
    forkserver is one per Python process and takes the list of the first pool that starts
    it, and it outlives ``aclose()`` (it exits with the parent).
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        warmup: Callable[[], Extractor] | None = TrafilaturaExtractor,
        preload: Sequence[str] = ("retrieval.workers", "retrieval.extract"),
        start_method: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._warmup = warmup
        self._context = multiprocessing.get_context(start_method or default_start_method())
        if self._context.get_start_method() == "forkserver":
            self._context.set_forkserver_preload(list(preload))
        self._pool = self._new_pool()
        self._closed = False

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self._warmup,),
        )

    async def start(self) -> None:
        """Start every worker and wait until each has warmed up and answered a ping."""
        pool = self._live_pool()
        seen: set[int] = set()
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            # Workers start on demand; pinging until each answered proves all are warm.
            while len(seen) < self.workers and time.monotonic() < deadline:
                pings = [asyncio.wrap_future(pool.submit(_ping)) for _ in range(self.workers)]
                seen.update(await asyncio.gather(*pings))
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise WorkerCrashed("an extraction worker failed to start") from exc
        log.info("extraction pool ready: %d workers %s", len(seen), sorted(seen))

    async def __call__(self, extractor: Extractor, page: Page) -> tuple[Document | None, float]:
        """Extract ``page`` with ``extractor`` in a worker; return the document and its CPU s."""
        pool = self._live_pool()
        try:
            future = pool.submit(_extract_timed, extractor, page)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise WorkerCrashed(f"an extraction worker died on {page.final_url}") from exc

    async def aclose(self) -> None:
        """Drop queued pages, wait for running ones and stop every worker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> ProcessOffload:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _live_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RetrievalError("the extraction pool is closed")
        return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Every call in flight on the broken pool lands here: only the first replaces it.
        if self._closed or self._pool is not broken:
            return
        log.warning("an extraction worker died; starting a new pool")
        self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)
