"""Extraction quality on the corpus's real pages (site 5): ours next to trafilatura's defaults.

Each site-5 page is a real saved web page whose ``text`` is its clean main text. Both
extractors get the same HTML; the score is bag-of-words token F1 (lower-cased ``\\w+`` tokens)
of the extracted text against ``text``, and the time is the thread CPU time of one call.

* ``footnote``: ``retrieval.extract.TrafilaturaExtractor()`` with its defaults, as the service
  builds it (title/date parse included, since the service pays for it too);
* ``trafilatura defaults``: ``trafilatura.extract(html)`` with no options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trafilatura

from bench.metrics import mean, p50, p95, token_f1
from retrieval.extract import TrafilaturaExtractor
from retrieval.types import Page
from tests.fakes.simweb import Page as CorpusPage

REAL_PAGES_SITE = 5


@dataclass
class ExtractorScore:
    """Quality and speed of one extractor over the real pages."""

    name: str
    pages: int
    empty: int
    f1_mean: float
    f1_median: float
    precision_mean: float
    recall_mean: float
    ms_p50: float
    ms_p95: float


def _footnote(extractor: TrafilaturaExtractor) -> Callable[[CorpusPage], str]:
    def run(page: CorpusPage) -> str:
        url = f"http://127.0.0.5{page['path']}"
        body = page["html"].encode("utf-8")
        doc = extractor.extract(
            Page(
                url=url,
                final_url=url,
                status=200,
                content_type="text/html",
                body=body,
                charset="utf-8",
            )
        )
        return doc.text if doc else ""

    return run


def _trafilatura_defaults(page: CorpusPage) -> str:
    return trafilatura.extract(page["html"]) or ""


def _score(
    name: str, run: Callable[[CorpusPage], str], pages: Sequence[CorpusPage]
) -> ExtractorScore:
    if pages:
        run(pages[0])  # warm-up: lazy imports and caches
    times: list[float] = []
    scores: list[tuple[float, float, float]] = []
    empty = 0
    for page in pages:
        t0 = time.thread_time()
        text = run(page)
        times.append((time.thread_time() - t0) * 1000)
        empty += not text.strip()
        scores.append(token_f1(text, page["text"]))
    return ExtractorScore(
        name=name,
        pages=len(pages),
        empty=empty,
        f1_mean=mean([s[2] for s in scores]),
        f1_median=p50([s[2] for s in scores]),
        precision_mean=mean([s[0] for s in scores]),
        recall_mean=mean([s[1] for s in scores]),
        ms_p50=p50(times),
        ms_p95=p95(times),
    )


def real_pages(pages: Sequence[CorpusPage], limit: int | None = None) -> list[CorpusPage]:
    """The site-5 (real-world) pages, at most ``limit`` of them."""
    found = [p for p in pages if p["site"] == REAL_PAGES_SITE]
    return found if limit is None else found[:limit]


def measure_extraction(pages: Sequence[CorpusPage]) -> list[ExtractorScore]:
    """Score Footnote's extractor and trafilatura's defaults on ``pages``."""
    return [
        _score("footnote (TrafilaturaExtractor)", _footnote(TrafilaturaExtractor()), pages),
        _score("trafilatura.extract defaults", _trafilatura_defaults, pages),
    ]
