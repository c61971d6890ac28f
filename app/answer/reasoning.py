"""The ``reasoning`` of a basis entry: how each claim follows from the sources, in words.

Built only from the evidence, never invented: for every claim (a sentence of prose, or a
value of structured output) it says which cited sources support it and how strongly, which
other sources read for the request agree, and which disagree on a number (a year, a count)
the claim states; then whether the whole field is supported and by how many independent
domains.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from app.answer.attribution import Claim
from app.answer.correct import KEEP, SupportIndex
from app.answer.sources import Source
from retrieval.text import tokenize

# A source disagrees on a number when its best sentence for the claim holds this share of
# the claim's other words but a different number of the same length, and not the claim's.
CONFLICT_CONTEXT = 0.6
_QUOTE_WORDS = 8


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or url).lower()
    return host.removeprefix("www.")


def _quote(text: str) -> str:
    words = text.split()
    short = " ".join(words[:_QUOTE_WORDS])
    return f'"{short}…"' if len(words) > _QUOTE_WORDS else f'"{short}"'


def _names(numbers: list[int], by_number: dict[int, Source]) -> str:
    return ", ".join(f"[{n}] {_domain(by_number[n].document.url)}" for n in numbers)


def _agreeing(words: frozenset[str], cited: tuple[int, ...], index: SupportIndex) -> list[int]:
    need = len(words)
    if not need:
        return []
    # A source agrees on a claim that states a number only if it states the same number.
    numbers = {w for w in words if w.isdigit()}
    out = []
    for n in index.sentences:
        if n in cited:
            continue
        hit = index.covered(words, n)
        if len(hit) / need >= KEEP and numbers <= hit:
            out.append(n)
    return out


def _conflicts(words: frozenset[str], index: SupportIndex) -> list[tuple[int, str]]:
    """``(source, number)`` for sources that give a different number in the same context."""
    numbers = {w for w in words if w.isdigit()}
    context = words - numbers
    if not numbers or len(context) < 2:
        return []
    found: list[tuple[int, str]] = []
    for source, windows in index.sentences.items():
        best: frozenset[str] | None = None
        for window in windows:
            if len(window & context) / len(context) >= CONFLICT_CONTEXT and (
                best is None or len(window & context) > len(best & context)
            ):
                best = window
        if best is None or numbers & best:
            continue
        lengths = {len(n) for n in numbers}
        other = sorted(w for w in best if w.isdigit() and len(w) in lengths)
        if other:
            found.append((source, other[0]))
    return found


def explain(
    field: str,
    claims: list[Claim],
    strengths: list[float],
    sources: list[Source],
    *,
    abstained: bool,
    supported: float,
    index: SupportIndex | None = None,
) -> str:
    """The reasoning of one field (``supported``: the support share a claim needs).

    ``index``: the request's tokenized sources, when the caller already has them.
    """
    by_number = {s.number: s for s in sources}
    if abstained or not any(c.sources for c in claims):
        read = len(by_number)
        if not read:
            return "No sources could be read for this question, so nothing is cited."
        if abstained:
            return (
                f"None of the {read} sources read supports an answer to the question, "
                "so the answer says so and cites nothing."
            )
        return f"No source among the {read} read supports this, so nothing is cited."
    index = index or SupportIndex(sources)
    prose = field == "content"
    parts: list[str] = []
    backed = 0
    for i, (claim, strength) in enumerate(zip(claims, strengths, strict=True), start=1):
        label = (
            f"Sentence {i} ({_quote(claim.text)})" if prose else f"The value {_quote(claim.text)}"
        )
        if not claim.sources:
            parts.append(f"{label} cites no source: none of the sources read supports it.")
            continue
        words = frozenset(tokenize(claim.text))
        cited = [n for n in claim.sources if n in by_number]
        if strength >= supported:
            backed += 1
            verdict = "is supported by"
        else:
            verdict = "is only weakly matched by"
        how = " together" if len(cited) > 1 else ""
        sentence = (
            f"{label} {verdict} {_names(cited, by_number)}{how} "
            f"({round(strength * 100)}% of its terms in the best excerpt)"
        )
        agree = _agreeing(words, claim.sources, index)
        if agree:
            sentence += f"; {_names(agree, by_number)} also agree{'s' if len(agree) == 1 else ''}"
        conflicts = [(n, v) for n, v in _conflicts(words, index) if n in by_number]
        if conflicts:
            differ = ", ".join(
                f"[{n}] {_domain(by_number[n].document.url)} gives {v}" for n, v in conflicts
            )
            sentence += f"; but {differ} instead"
        parts.append(sentence + ".")
    total = len(claims)
    if prose and total > 1:
        parts.append(
            "Every sentence is supported by the sources it cites."
            if backed == total
            else f"{backed} of {total} sentences are supported by the sources they cite."
        )
    domains = {_domain(by_number[n].document.url) for c in claims for n in c.sources}
    if len(domains) > 1:
        parts.append(f"The cited sources come from {len(domains)} independent domains.")
    return " ".join(parts)
