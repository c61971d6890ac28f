"""Builds the ``basis`` of an answer: citations with verbatim excerpts, reasoning, confidence.

Everything here is derived from the answer's claims and the fetched evidence; nothing is
invented.

Confidence (``_confidence``) is a rule over ``Signals``:

* ``low``: nothing cited, fewer than half of the claims supported (``SUPPORTED``: half of a
  claim's content words in one cited sentence), the cited excerpts holding less than
  ``LOW_COVERAGE`` (60%) of the question's content words or less than ``LOW_NAMES`` (half) of
  its names and numbers; also an abstention, and (``engine.finalize``) any answer whose
  evidence the sufficiency check (``app/answer/sufficiency.py``) found not to answer the
  question;
* ``high``: every claim supported, the excerpts holding ``HIGH_COVERAGE`` (90%) of the
  question's content words and all of its names and numbers, a number or date among them
  when the question asks "how many" or "when" (``sufficiency.answer_type_met``), and the
  support either *focused* (one source) or *corroborated* (two or more domains, and at least
  half of the claims each backed by two or more of the cited sources); never for a question
  that word overlap cannot vouch for: "why"/"how" (an explanation) or one leaning on a
  pronoun (``sufficiency.open_question``);
* ``medium``: the rest.

Calibrated on the simulated web's 600 dev questions (``python -m bench basis --questions
600``; the corpus has no held-out split), answerable questions with a checkable answer. Tier
``base``, extractive answers and the bench's reading model alike (``app/answer/reader.py``):
``high`` answers contain the gold answer 93% of the time (76/82), ``medium`` 74% (208/280),
``low`` 42% (50/118); ``core`` 94%, 75%, 42%; ``speed``, which reads 4 pages, 89%, 70%, 21%.
With the bench's quoting model (a poor reader), 98%, 67% and 31%. Capping why/how/pronoun
questions at ``medium`` moved base ``high`` from 90% to 93%. An answer citing several pages
is not itself more certain (in that corpus every fact sits on one page: one cited source was
82% right, three 53%), so "more sources" is no reason for ``high``; corroboration never
occurs there, so the corroborated branch is not measured by it. Unanswerable SQuAD questions
that slip past the sufficiency check mostly land in ``medium``/``low`` (base: 11 high, 52
medium, 37 low of 100).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec

from app.answer.attribution import Claim, best_excerpts, claims_of
from app.answer.correct import SupportIndex
from app.answer.reasoning import explain
from app.answer.sources import Source
from app.answer.sufficiency import answer_type_met, named_terms, open_question
from app.openai_types import Annotation, Citation, Confidence, FieldBasis, UrlCitation
from retrieval.text import tokenize

# A claim counts as supported when this share of its content words is in a cited sentence.
SUPPORTED = 0.5
# Confidence thresholds, calibrated on the dev questions (see the module docstring).
HIGH_COVERAGE = 0.9
LOW_COVERAGE = 0.6
LOW_NAMES = 0.5
CORROBORATED = 0.5


class Attributed(msgspec.Struct, frozen=True, kw_only=True):
    """The basis entry of a field, its annotations, and the sources it cites."""

    basis: FieldBasis
    annotations: list[Annotation]
    cited: tuple[int, ...]


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or url).lower()
    return host.removeprefix("www.")


class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """What confidence is decided from (see the module docstring)."""

    claims: int
    supported: float  # share of the claims whose best cited sentence holds >= SUPPORTED
    sources: int  # distinct sources cited
    domains: int  # distinct domains (hosts) cited
    agreement: float  # share of the claims that two or more cited sources support
    coverage: float  # share of the question's content words in the cited excerpts
    names: float  # share of the question's names and numbers in the cited excerpts
    typed: bool  # a number/date is cited when the question asks "how many"/"when"
    open: bool = False  # a why/how or pronoun question: never high (``sufficiency.open_question``)


def confidence_signals(
    question: str,
    claims: list[Claim],
    strengths: list[float],
    backers: list[int],
    excerpts: dict[int, list[str]],
    domains: set[str],
) -> Signals:
    """The confidence signals of one field (no ``question``: coverage counts as full)."""
    cited = [s for c, s in zip(claims, strengths, strict=True) if c.sources]
    seen = {t for texts in excerpts.values() for e in texts for t in tokenize(e)}
    terms, names = set(tokenize(question)), named_terms(question)
    n = len(claims)
    return Signals(
        claims=n,
        supported=sum(s >= SUPPORTED for s in cited) / n if n else 0.0,
        sources=len(excerpts),
        domains=len(domains),
        agreement=sum(b >= 2 for b in backers) / n if n else 0.0,
        coverage=len(terms & seen) / len(terms) if terms else 1.0,
        names=len(names & seen) / len(names) if names else 1.0,
        typed=answer_type_met(question, (e for texts in excerpts.values() for e in texts)),
        open=open_question(question),
    )


def _confidence(signals: Signals) -> Confidence:
    if (
        not signals.sources
        or signals.supported < SUPPORTED
        or signals.coverage < LOW_COVERAGE
        or signals.names < LOW_NAMES
    ):
        return "low"
    # One source that covers the whole question, or independent sites saying the same thing.
    # Support scattered over several pages, none of them covering the question, is medium.
    focused = signals.sources == 1
    corroborated = signals.domains >= 2 and signals.agreement >= CORROBORATED
    if (
        signals.supported >= 0.99
        and signals.coverage >= HIGH_COVERAGE
        and signals.names >= 1.0
        and signals.typed
        and not signals.open
        and (focused or corroborated)
    ):
        return "high"
    return "medium"


def attribute(
    text: str,
    sources: list[Source],
    *,
    abstained: bool = False,
    question: str = "",
    index: SupportIndex | None = None,
) -> Attributed:
    """Turn the final answer text into its basis entry and annotations."""
    return field_basis(
        "content", claims_of(text), sources, abstained=abstained, question=question, index=index
    )


def field_basis(
    field: str,
    claims: list[Claim],
    sources: list[Source],
    *,
    abstained: bool = False,
    question: str = "",
    index: SupportIndex | None = None,
) -> Attributed:
    """The basis entry of one output field from its claims (sentences or values).

    ``index``: the request's tokenized sources, when the caller already has them.
    """
    by_number = {s.number: s for s in sources}
    claims = [
        msgspec.structs.replace(c, sources=tuple(n for n in c.sources if n in by_number))
        for c in claims
    ]
    excerpts: dict[int, list[str]] = {}
    strengths: list[float] = []
    backers: list[int] = []  # per claim, cited sources that support it on their own
    annotations: list[Annotation] = []
    for claim in claims:
        best = 0.0
        backed = 0
        for number in claim.sources:
            source = by_number[number]
            found = best_excerpts(claim.text, source)
            backed += max((score for _, score in found), default=0.0) >= SUPPORTED
            for sentence, score in found:
                best = max(best, score)
                bucket = excerpts.setdefault(number, [])
                if sentence not in bucket:
                    bucket.append(sentence)
            annotations.append(
                Annotation(
                    url_citation=UrlCitation(
                        url=source.document.url,
                        title=source.document.title,
                        start_index=claim.start,
                        end_index=claim.end,
                    )
                )
            )
        strengths.append(best)
        backers.append(backed)
    citations = [
        Citation(
            url=by_number[n].document.url,
            title=by_number[n].document.title,
            excerpts=excerpts[n],
            internal=by_number[n].document.internal,
        )
        for n in excerpts
    ]
    domains = {_domain(by_number[n].document.url) for n in excerpts}
    signals = confidence_signals(question, claims, strengths, backers, excerpts, domains)
    confidence = "low" if abstained else _confidence(signals)
    basis = FieldBasis(
        field=field,
        citations=citations,
        reasoning=explain(
            field,
            claims,
            strengths,
            sources,
            abstained=abstained,
            supported=SUPPORTED,
            index=index,
        ),
        confidence=confidence,
    )
    return Attributed(basis=basis, annotations=annotations, cited=tuple(excerpts))
