"""Builds the ``basis`` of an answer: citations with verbatim excerpts, reasoning, confidence.

Everything here is derived from the answer's claims and the fetched evidence; nothing is
invented. Confidence is a rule over support strength, coverage and independent domains.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec

from app.answer.attribution import Claim, best_excerpts, claims_of
from app.answer.sources import Source
from app.openai_types import Annotation, Citation, Confidence, FieldBasis, UrlCitation

# A claim counts as supported when this share of its content words is in a cited sentence.
SUPPORTED = 0.5


class Attributed(msgspec.Struct, frozen=True, kw_only=True):
    """The basis entry of a field, its annotations, and the sources it cites."""

    basis: FieldBasis
    annotations: list[Annotation]
    cited: tuple[int, ...]


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or url).lower()
    return host.removeprefix("www.")


def _confidence(claims: list[Claim], strengths: list[float], domains: set[str]) -> Confidence:
    cited = [s for c, s in zip(claims, strengths, strict=True) if c.sources]
    if not cited:
        return "low"
    covered = sum(s >= SUPPORTED for s in cited) / len(claims)
    if covered >= 0.99 and len(domains) >= 2 and min(cited) >= 0.6:
        return "high"
    if covered >= 0.5:
        return "medium"
    return "low"


def _reasoning(
    claims: list[Claim], strengths: list[float], by_number: dict[int, Source], abstained: bool
) -> str:
    if abstained or not any(c.sources for c in claims):
        read = len(by_number)
        return (
            f"None of the {read} sources read supports an answer to the question, "
            "so the answer says so and cites nothing."
            if read
            else "No sources could be read for this question, so nothing is cited."
        )
    parts: list[str] = []
    for i, (claim, strength) in enumerate(zip(claims, strengths, strict=True), start=1):
        if not claim.sources:
            parts.append(f"Sentence {i} cites no source.")
            continue
        names = ", ".join(
            f"[{n}] {_domain(by_number[n].document.url)}" for n in claim.sources if n in by_number
        )
        verdict = "is supported by" if strength >= SUPPORTED else "is only weakly matched by"
        parts.append(f"Sentence {i} {verdict} {names} ({round(strength * 100)}% of its terms).")
    domains = {_domain(by_number[n].document.url) for c in claims for n in c.sources}
    if len(domains) > 1:
        parts.append(f"The cited sources come from {len(domains)} independent domains.")
    return " ".join(parts)


def attribute(text: str, sources: list[Source], *, abstained: bool = False) -> Attributed:
    """Turn the final answer text into its basis entry and annotations."""
    by_number = {s.number: s for s in sources}
    claims = [
        msgspec.structs.replace(c, sources=tuple(n for n in c.sources if n in by_number))
        for c in claims_of(text)
    ]
    excerpts: dict[int, list[str]] = {}
    strengths: list[float] = []
    annotations: list[Annotation] = []
    for claim in claims:
        best = 0.0
        for number in claim.sources:
            source = by_number[number]
            for sentence, score in best_excerpts(claim.text, source):
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
    citations = [
        Citation(
            url=by_number[n].document.url,
            title=by_number[n].document.title,
            excerpts=excerpts[n],
        )
        for n in excerpts
    ]
    domains = {_domain(by_number[n].document.url) for n in excerpts}
    confidence = "low" if abstained else _confidence(claims, strengths, domains)
    basis = FieldBasis(
        field="content",
        citations=citations,
        reasoning=_reasoning(claims, strengths, by_number, abstained),
        confidence=confidence,
    )
    return Attributed(basis=basis, annotations=annotations, cited=tuple(excerpts))
