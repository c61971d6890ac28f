"""Prometheus metrics of the service, in one ``Metrics`` object per app (no globals).

Single process: the collectors live in the app's own ``CollectorRegistry``. Several
uvicorn workers: prometheus_client's multiprocess mode, switched on by the library's own
``PROMETHEUS_MULTIPROC_DIR`` variable (``multiprocess_dir`` sets it up for a run): each
worker writes its samples to files there and ``/metrics``, whichever worker answers it,
adds up every worker's files. Only counters and histograms are used, the two kinds that
aggregate across processes without choosing a gauge mode.

Labels are bounded: routes are path templates (``/corpus/{route:path}``, ``unmatched``
for unknown paths), tiers are the known tier names, error types and codes are the
service's own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.obs.context import RequestRecord

# The classic text format, which every Prometheus reads (Litestar appends the charset).
CONTENT_TYPE = "text/plain; version=0.0.4"
ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Whole requests: from a cached bundled answer (~10 ms) to a deep upstream answer (~1 min).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
# One stage of one request (search, fetch_extract, rank, rewrite, upstream).
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client writes samples to a shared directory (several workers)."""
    return bool(os.environ.get(ENV_DIR))


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """Set up multiprocess metrics for a run with ``workers`` processes.

    With more than one worker and no ``PROMETHEUS_MULTIPROC_DIR`` given, a fresh temporary
    directory is created, exported (worker processes inherit it; they must import
    prometheus_client after this) and removed at the end. A directory the operator set is
    used as it is and left in place. One worker needs nothing: yields ``None``.
    """
    given = os.environ.get(ENV_DIR)
    if given or workers <= 1:
        yield given or None
        return
    path = tempfile.mkdtemp(prefix="footnote-metrics-")
    os.environ[ENV_DIR] = path
    try:
        yield path
    finally:
        os.environ.pop(ENV_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


class Metrics:
    """The service's collectors and their text exposition."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_enabled()
        # In multiprocess mode samples go to files, not to a registry; ``render`` collects.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter(
            "footnote_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "footnote_http_request_duration_seconds",
            "Time from request start to the last byte of the response (streams included).",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.stages = Histogram(
            "footnote_stage_duration_seconds",
            "Duration of one answer stage: search, fetch_extract, rank, rewrite, upstream.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=reg,
        )
        self.answers = Counter(
            "footnote_answers",
            "Answers researched, by tier.",
            ["tier"],
            registry=reg,
        )
        self.searches = Counter(
            "footnote_search_queries", "Search queries sent to the provider.", registry=reg
        )
        self.pages = Counter(
            "footnote_pages",
            "Pages read for answers: fetched (readable text) or failed.",
            ["outcome"],
            registry=reg,
        )
        self.cache = Counter(
            "footnote_page_cache",
            "Page cache lookups: hit (no fetch needed) or miss (fetched and extracted).",
            ["result"],
            registry=reg,
        )
        self.tokens = Counter(
            "footnote_upstream_tokens",
            "Tokens spent at the upstream LLM, by kind (prompt or completion).",
            ["kind"],
            registry=reg,
        )
        self.errors = Counter(
            "footnote_errors",
            "Error answers, by OpenAI error type and code.",
            ["type", "code"],
            registry=reg,
        )

    def observe(
        self, record: RequestRecord, *, route: str, method: str, status: int, seconds: float
    ) -> None:
        """Count one finished request and everything its record says it did."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if record.error_type is not None:
            self.errors.labels(record.error_type, record.error_code or "none").inc()
        if record.pages_fetched is None:
            return  # no research happened (an error before it, or not a chat request)
        self.answers.labels(record.tier or "unknown").inc()
        for stage, ms in record.stages_ms.items():
            self.stages.labels(stage).observe(ms / 1000)
        self.searches.inc(record.searches or 0)
        self.pages.labels("fetched").inc(record.pages_fetched)
        self.pages.labels("failed").inc(record.pages_failed or 0)
        self.cache.labels("hit").inc(record.cache_hits or 0)
        self.cache.labels("miss").inc(record.cache_misses or 0)
        self.tokens.labels("prompt").inc(record.prompt_tokens or 0)
        self.tokens.labels("completion").inc(record.completion_tokens or 0)

    def render(self) -> bytes:
        """The Prometheus text exposition (every worker's samples in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
