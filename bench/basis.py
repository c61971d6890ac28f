"""How good is the ``basis``: citations, excerpts, confidence and abstention, per tier.

For every sampled dev question and tier, the service's own ``engine.research`` runs once
in-process over the same in-memory search and fetch as ``bench.loss`` (latency off, the pages
and hits the HTTP run gets), then the answer is written twice through ``engine.write`` and
``engine.finalize``:

* **upstream**: the real ``Upstream`` client talking to a loopback ``FakeUpstream`` whose
  answer is ``reading_model``: it parses the sources out of the prompt it was sent (title,
  page, which is site and path with no scheme or query, and passages) and reads them as a
  careful writer would, with Footnote's own reader (``app.answer.reader``: the
  best-answering sentence, then the connected page a comparison or second hop needs),
  quoting each sentence with its ``[n]``;
  it never sees the gold answer or pages. Being obedient, it answers "I could not find this
  in the sources." when the system prompt carries Footnote's ``INSUFFICIENT_NOTE``;
* **quoting**: the same, but the model is the test fake's own ``compose_answer``: the 1-3
  sentences sharing the most idf-weighted words with the question, whatever page they are
  on. A model that reads badly: its rows show what checking citations can and cannot fix
  (every citation stays correct, but precision and recall are the model's);
* **extractive**: no upstream (``app.answer.extractive``).

Per tier, mode and stratum it reports (``Tally``):

* citation precision: cited URLs that are gold pages / cited URLs (answerable questions);
* gold-page recall: gold pages cited / gold pages (answerable questions; an abstention
  cites none); next to it, gold pages among the sources the writer was given (its ceiling);
* excerpt support: gold sentences overlapping a basis excerpt (one contains the other,
  whitespace-normalised; excerpts of 20+ characters) / gold sentences;
* accuracy per confidence level: answers containing a gold answer (SQuAD normalisation:
  lower case, no punctuation or articles) / answerable questions at that level; yes/no
  answers are left out (a quoting model cannot say "yes"); unanswerable questions at each
  level are counted apart;
* abstention: answers that decline (``declines``) / questions;
* verbatim: basis excerpts found character for character in the fetched text of the page
  they cite / excerpts (must be 100%);
* unfetched: citations (basis and annotations) of URLs that were not fetched (must be 0).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from app.answer import engine
from app.answer.prompt import INSUFFICIENT_NOTE
from app.answer.reader import cited, read
from app.answer.sources import Source
from app.answer.upstream import Upstream
from app.openai_types import ChatMessage, ChatRequest
from app.services import Services
from app.tiers import Tier
from bench.cpu import Meter, memory_services
from bench.loss import _CachedExtractor
from bench.metrics import squash
from bench.questions import stratum
from bench.report import fmt, table
from bench.tables import Target
from retrieval.types import Document, Passage
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import Question, SimulatedWeb
from tests.fakes.upstream import (
    NOT_FOUND_ANSWER,
    FakeUpstream,
    compose_answer,
    message_text,
    parse_prompt,
)

MODES = ("upstream", "quoting", "extractive")
READING_MODEL = "reading-model"
QUOTING_MODEL = "quoting-model"
LEVELS = ("high", "medium", "low")
MIN_EXCERPT = 20  # characters: a shorter excerpt "inside" a gold sentence proves nothing
_DECLINES = re.compile(
    r"\b(?:could not|couldn't|cannot|can't|do not|don't|does not|doesn't)\b[^.]*\b"
    r"(?:find|answer|contain|say|state|mention)",
    re.I,
)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def checkable(answers: Sequence[str]) -> bool:
    """Whether containment of a gold answer can be checked (not yes/no, not empty)."""
    return any(normalize_answer(a) not in {"", "yes", "no"} for a in answers)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether ``text`` holds one of ``answers`` as whole words, after normalisation."""
    haystack = f" {normalize_answer(text)} "
    return any(
        f" {norm} " in haystack
        for norm in (normalize_answer(a) for a in answers)
        if norm not in {"", "yes", "no"}
    )


def declines(text: str) -> bool:
    """Whether the answer says the sources do not answer the question (or is empty)."""
    return not text.strip() or bool(_DECLINES.search(text))


def page_path(url: str) -> str:
    """The decoded path of ``url``, how gold pages are named."""
    return unquote(urlsplit(url).path)


def excerpt_support(gold_sentences: Iterable[str], excerpts: Iterable[str]) -> int:
    """Gold sentences that overlap an excerpt: one holds the other (whitespace-normalised)."""
    pieces = [squash(e) for e in excerpts]
    pieces = [p for p in pieces if len(p) >= MIN_EXCERPT]
    found = 0
    for sentence in gold_sentences:
        gold = squash(sentence)
        found += any(gold in p or p in gold for p in pieces)
    return found


def verbatim_count(citations: Iterable[tuple[str, Sequence[str]]], fetched: dict[str, str]) -> int:
    """Excerpts that are exact substrings of the fetched text of the URL they cite."""
    return sum(
        1 for url, excerpts in citations for e in excerpts if e and e in fetched.get(url, "")
    )


@dataclass
class Tally:
    """The counts behind every figure, for one tier, mode and stratum."""

    questions: int = 0
    cited: int = 0
    cited_gold: int = 0
    gold_pages: int = 0
    gold_pages_cited: int = 0
    gold_pages_shown: int = 0
    gold_sentences: int = 0
    gold_supported: int = 0
    abstained: int = 0
    excerpts: int = 0
    verbatim: int = 0
    unfetched: int = 0
    # level -> [answers, correct]; unanswerable questions -> answers per level
    levels: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in LEVELS})
    unanswerable_levels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        for name in (f.name for f in dataclasses.fields(self)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, int):
                setattr(self, name, mine + theirs)
        for level in LEVELS:
            self.levels[level][0] += other.levels[level][0]
            self.levels[level][1] += other.levels[level][1]
            self.unanswerable_levels[level] += other.unanswerable_levels[level]


def score_answer(
    question: Question,
    text: str,
    confidence: str,
    citations: Sequence[tuple[str, Sequence[str]]],
    annotated_urls: Iterable[str],
    fetched: dict[str, str],
    shown: Iterable[str] = (),
) -> Tally:
    """The tally of one answer: ``citations`` are the basis's ``(url, excerpts)``.

    ``shown`` are the URLs of the sources the writer was given (a recall ceiling).
    """
    tally = Tally(questions=1)
    urls = list(dict.fromkeys(url for url, _ in citations))
    tally.unfetched = sum(1 for url in {*urls, *annotated_urls} if url not in fetched)
    tally.excerpts = sum(len(e) for _, e in citations)
    tally.verbatim = verbatim_count(citations, fetched)
    abstained = declines(text)
    tally.abstained = int(abstained)
    if not question["answerable"]:
        tally.unanswerable_levels[confidence] += 1
        return tally
    gold = {unquote(p) for p in question["gold_pages"]}
    cited_paths = {page_path(u) for u in urls}
    tally.cited = len(urls)
    tally.cited_gold = sum(1 for u in urls if page_path(u) in gold)
    tally.gold_pages = len(gold)
    tally.gold_pages_cited = len(gold & cited_paths)
    tally.gold_pages_shown = len(gold & {page_path(u) for u in shown})
    tally.gold_sentences = len(question["gold_sentences"])
    tally.gold_supported = excerpt_support(
        question["gold_sentences"], (e for _, excerpts in citations for e in excerpts)
    )
    if checkable(question["answers"]):
        level = tally.levels[confidence]
        level[0] += 1
        level[1] += int(not abstained and contains_answer(text, question["answers"]))
    return tally


def prompt_sources(sources: Sequence[tuple[int, str, str, str]]) -> list[Source]:
    """The prompt's ``(n, title, url, text)`` sources as ``Source`` objects, one passage per block.

    A source's document is what the model was shown (its passages joined), so every quote the
    model makes of it is a slice of it, as of the fetched page it came from.
    """
    out = []
    for number, title, url, text in sources:
        passages = []
        for match in re.finditer(r"[^\n](?:.|\n(?!\n))*", text):
            passages.append(
                Passage(
                    doc=number - 1,
                    start=match.start(),
                    end=match.end(),
                    text=match.group(0),
                    score=1.0,
                )
            )
        out.append(
            Source(
                number=number,
                document=Document(url=url, title=title, text=text),
                passages=tuple(passages),
            )
        )
    return out


def reading_model(question: str, sources: Sequence[tuple[int, str, str, str]]) -> str:
    """The reading model's answer: the reader's sentences, each with its ``[n]``."""
    picks = read(question, prompt_sources(sources))
    if not picks:
        return NOT_FOUND_ANSWER
    return cited(picks)


def bench_model(body: dict[str, Any]) -> str:
    """The fake model's answer: obedient to Footnote's note, else read (or quoted) from the prompt.

    ``body["model"]`` picks the model: ``QUOTING_MODEL`` is the fake's ``compose_answer``;
    anything else is ``reading_model``.
    """
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = " ".join(message_text(m.get("content")) for m in messages if m.get("role") == "system")
    users = [m for m in messages if m.get("role") == "user"]
    if INSUFFICIENT_NOTE.strip() in system or not users:
        return NOT_FOUND_ANSWER
    question, sources = parse_prompt(message_text(users[-1].get("content")))
    if body.get("model") == QUOTING_MODEL:
        return compose_answer(question, sources)
    return reading_model(question, sources)


@dataclass
class BasisRow:
    """One tier and mode: tallies per stratum."""

    tier: str
    mode: str
    strata: dict[str, Tally]


async def _answer(
    services: Services, found: engine.Research, tier: Tier
) -> tuple[str, engine.Final]:
    request = ChatRequest(model=tier.name, messages=found.messages)
    written = await engine.write(services, found, request)
    return written.text, engine.finalize(found, written.text, 0, 0)


def _tally(question: Question, found: engine.Research, text: str, final: engine.Final) -> Tally:
    basis = final.basis[0]
    fetched = {doc.url: doc.text for doc in found.evidence.documents}
    citations = [(c.url, c.excerpts) for c in basis.citations]
    annotated = [a.url_citation.url for a in final.annotations]
    shown = [s.document.url for s in found.sources]
    return score_answer(question, text, basis.confidence, citations, annotated, fetched, shown)


def measure_basis(
    web: SimulatedWeb, searxng: FakeSearxng, questions: Sequence[Question], tiers: Sequence[Tier]
) -> list[BasisRow]:
    """Research each question once per tier, answer it in both modes, tally the basis."""
    fake = FakeUpstream().start()
    fake.script = bench_model
    try:
        base = memory_services(web, searxng, Meter(), timed=False)
        base = dataclasses.replace(base, extractor=_CachedExtractor(base.extractor))

        def model(name: str) -> Services:
            upstream = Upstream(
                base_url=fake.base_url, api_key=None, model=name, timeout_s=30, max_retries=0
            )
            return dataclasses.replace(base, upstream=upstream)

        with_model = model(READING_MODEL)
        modes = {
            "upstream": with_model,
            "quoting": model(QUOTING_MODEL),
            "extractive": dataclasses.replace(base, upstream=None),
        }

        async def main() -> list[BasisRow]:
            rows: list[BasisRow] = []
            for tier in tiers:
                tallies = {m: {s: Tally() for s in _STRATA} for m in MODES}
                for question in questions:
                    asked = [ChatMessage(role="user", content=question["question"])]
                    found = await engine.research(with_model, tier, asked)
                    for mode, services in modes.items():
                        text, final = await _answer(services, found, tier)
                        tallies[mode][stratum(question)].add(_tally(question, found, text, final))
                rows += [BasisRow(tier.name, m, tallies[m]) for m in MODES]
            return rows

        return asyncio.run(main())
    finally:
        fake.stop()


_STRATA = ("hotpotqa", "squad", "squad-unanswerable")


def _ratio(num: int, den: int, digits: int = 2) -> str:
    return f"{fmt(num / den, digits)} ({num}/{den})" if den else "-"


def basis_section(rows: Sequence[BasisRow]) -> str:
    """Citation quality per tier, mode and answerable stratum."""
    headers = [
        "tier", "mode", "stratum", "n", "cit. precision", "gold-page recall", "gold in sources",
        "excerpt support", "abstain", "verbatim", "unfetched",
    ]  # fmt: skip
    body = []
    for row in rows:
        for name in ("hotpotqa", "squad"):
            t = row.strata[name]
            body.append(
                [
                    row.tier,
                    row.mode,
                    name,
                    str(t.questions),
                    _ratio(t.cited_gold, t.cited),
                    _ratio(t.gold_pages_cited, t.gold_pages),
                    _ratio(t.gold_pages_shown, t.gold_pages),
                    _ratio(t.gold_supported, t.gold_sentences),
                    _ratio(t.abstained, t.questions),
                    _ratio(t.verbatim, t.excerpts, 3),
                    str(t.unfetched),
                ]
            )
    return table(headers, body)


def confidence_section(rows: Sequence[BasisRow]) -> str:
    """Accuracy per confidence level and abstention on answerable vs unanswerable SQuAD."""
    headers = [
        "tier", "mode", "high acc", "medium acc", "low acc", "unans. at h/m/l",
        "abstain unans. SQuAD", "abstain ans. SQuAD", "abstain HotpotQA",
    ]  # fmt: skip
    body = []
    for row in rows:
        both = Tally()
        for name in ("hotpotqa", "squad"):
            both.add(row.strata[name])
        unans = row.strata["squad-unanswerable"]
        body.append(
            [
                row.tier,
                row.mode,
                *(_ratio(both.levels[k][1], both.levels[k][0]) for k in LEVELS),
                "/".join(str(unans.unanswerable_levels[k]) for k in LEVELS),
                _ratio(unans.abstained, unans.questions),
                _ratio(row.strata["squad"].abstained, row.strata["squad"].questions),
                _ratio(row.strata["hotpotqa"].abstained, row.strata["hotpotqa"].questions),
            ]
        )
    return table(headers, body)


def basis_targets(rows: Sequence[BasisRow]) -> list[Target]:
    """Issue 4's targets, measured (citation figures per mode; verbatim over every row)."""
    by = {(r.tier, r.mode): r for r in rows}
    out: list[Target] = []

    def ratio(num: int, den: int) -> float:
        return num / den if den else 0.0

    for mode in ("upstream", "extractive"):
        base, core = by.get(("base", mode)), by.get(("core", mode))
        if base is not None:
            h = base.strata["hotpotqa"]
            p, r = ratio(h.cited_gold, h.cited), ratio(h.gold_pages_cited, h.gold_pages)
            out.append(
                Target(
                    f"HotpotQA citation precision, base, {mode}",
                    f"{p:.3f} ({h.cited_gold}/{h.cited})",
                    ">= 0.90",
                    p >= 0.90,
                )
            )
            out.append(
                Target(
                    f"HotpotQA gold-page recall, base, {mode}",
                    f"{r:.3f} ({h.gold_pages_cited}/{h.gold_pages})",
                    ">= 0.85",
                    r >= 0.85,
                )
            )
        if core is not None:
            h = core.strata["hotpotqa"]
            r = ratio(h.gold_pages_cited, h.gold_pages)
            out.append(
                Target(
                    f"HotpotQA gold-page recall, core, {mode}",
                    f"{r:.3f} ({h.gold_pages_cited}/{h.gold_pages})",
                    ">= 0.95",
                    r >= 0.95,
                )
            )
    total = Tally()
    for row in rows:
        for tally in row.strata.values():
            total.add(tally)
    out.append(
        Target(
            "excerpts verbatim (every tier and mode)",
            f"{ratio(total.verbatim, total.excerpts):.3f} ({total.verbatim}/{total.excerpts})",
            "1.000",
            total.verbatim == total.excerpts,
        )
    )
    out.append(
        Target("citations of pages not fetched", str(total.unfetched), "0", not total.unfetched)
    )
    for row in rows:
        if row.tier != "base" or row.mode == "quoting":
            continue
        both = Tally()
        for name in ("hotpotqa", "squad"):
            both.add(row.strata[name])
        high, low = both.levels["high"], both.levels["low"]
        unans, ans = row.strata["squad-unanswerable"], row.strata["squad"]
        figures = [
            ("'high' answers holding the gold answer", high[1], high[0], ">= 0.90", True, 0.90),
            ("'low' answers holding the gold answer", low[1], low[0], "<= 0.50", False, 0.50),
            (
                "unanswerable SQuAD abstained",
                unans.abstained,
                unans.questions,
                ">= 0.80",
                True,
                0.80,
            ),
            ("answerable SQuAD abstained", ans.abstained, ans.questions, "<= 0.10", False, 0.10),
        ]
        for name, num, den, goal, at_least, bound in figures:
            value = ratio(num, den)
            out.append(
                Target(
                    f"{name}, base, {row.mode}",
                    f"{value:.3f} ({num}/{den})",
                    goal,
                    value >= bound if at_least else value <= bound,
                )
            )
    return out


TARGETS = (
    "Targets (issue 4): HotpotQA base: citation precision >= 0.90, gold-page recall >= 0.85; "
    "core recall >= 0.95; high answers contain the gold answer >= 90%, low <= 50%; "
    "unanswerable SQuAD >= 80% abstain, answerable <= 10%."
)


def as_json(rows: Sequence[BasisRow]) -> list[dict[str, Any]]:
    """The rows as plain JSON-ready dicts."""
    return [
        {
            "tier": r.tier,
            "mode": r.mode,
            "strata": {k: dataclasses.asdict(t) for k, t in r.strata.items()},
        }
        for r in rows
    ]
