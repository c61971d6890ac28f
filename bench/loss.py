"""Where evidence recall is lost: search, page selection, extraction or ranking.

Runs the service's own ``engine.research`` and ``prompt.build_messages`` in-process over the
same in-memory search and fetch as ``bench.cpu`` (the same pages and hits the HTTP run gets
with latency off), keeping everything the pipeline saw. Each gold sentence is put in the first
bucket that fits:

1. ``in context``: present (whitespace-normalised) in the user message sent upstream;
2. ``read, ranked out``: in the extracted text of a page that was read, not sent;
3. ``read, not extracted``: its gold page was read, but the sentence is not in its text;
4. ``found, not read``: its gold page was among the search hits, beyond ``max_pages``;
5. ``not found``: no query's results held its gold page.

A sentence's gold page is the gold page whose corpus ``text`` contains it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from app.answer import engine
from app.answer.prompt import build_messages
from app.openai_types import ChatMessage
from app.tiers import Tier
from bench.cpu import Meter, memory_services
from bench.metrics import squash
from bench.questions import stratum
from retrieval.protocols import Extractor
from retrieval.types import Document, Page
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import Question, SimulatedWeb

BUCKETS = ("in context", "read, ranked out", "read, not extracted", "found, not read", "not found")


class _CachedExtractor:
    """The service's extractor, remembering each URL's document (quality only, not timing)."""

    def __init__(self, inner: Extractor) -> None:
        self._inner = inner
        self._cache: dict[str, Document | None] = {}

    def extract(self, page: Page) -> Document | None:
        if page.final_url not in self._cache:
            self._cache[page.final_url] = self._inner.extract(page)
        return self._cache[page.final_url]


@dataclass
class Loss:
    """Gold sentences of one tier and stratum, by bucket."""

    tier: str
    stratum: str
    gold: int = 0
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))


def _path(url: str) -> str:
    return unquote(urlsplit(url).path)


def _classify(
    sentence: str,
    question: Question,
    context: str,
    documents: Sequence[Document],
    hit_paths: set[str],
    web: SimulatedWeb,
) -> str:
    gold = squash(sentence)
    if gold in context:
        return "in context"
    if any(gold in squash(doc.text) for doc in documents):
        return "read, ranked out"
    owners = [
        path
        for path in question["gold_pages"]
        if (page := web.page_by_path(path)) is not None and gold in squash(page["text"])
    ]
    read = {_path(doc.url) for doc in documents}
    if any(unquote(path) in read for path in owners):
        return "read, not extracted"
    if any(unquote(path) in hit_paths for path in owners):
        return "found, not read"
    return "not found"


def recall_loss(
    web: SimulatedWeb, searxng: FakeSearxng, questions: Sequence[Question], tiers: Sequence[Tier]
) -> list[Loss]:
    """Bucket every gold sentence of ``questions`` for each tier."""
    services = memory_services(web, searxng, Meter(), timed=False)
    services = dataclasses.replace(services, extractor=_CachedExtractor(services.extractor))

    async def main() -> list[Loss]:
        out: list[Loss] = []
        for tier in tiers:
            rows = {name: Loss(tier.name, name) for name in ("hotpotqa", "squad")}
            for question in questions:
                row = rows.get(stratum(question))
                if row is None or not question["gold_sentences"]:
                    continue
                messages = [ChatMessage(role="user", content=question["question"])]
                found = await engine.research(services, tier, messages)
                prompt = build_messages(found.messages, found.question, found.sources)
                context = squash(prompt[-1]["content"])
                documents = found.evidence.documents
                hits = {_path(hit.url) for hit in found.evidence.hits}
                for sentence in question["gold_sentences"]:
                    row.gold += 1
                    bucket = _classify(sentence, question, context, documents, hits, web)
                    row.buckets[bucket] += 1
            out.extend(rows.values())
        return out

    return asyncio.run(main())
