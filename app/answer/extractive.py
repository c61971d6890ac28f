"""Answers without an LLM: the best-supported sentences of the ranked passages, each cited.

The best sentence, and per named subject of the question (``retrieval.plan.subjects``) the
best sentence that mentions it, come first, so "Who is older, Annie Morton or Terry
Richardson?" gets a sentence about each; then the best remaining sentences fill up to
``most``, each either from a page already cited or adding question words not yet covered
(every extra page cited should earn its place: citation precision). A sentence's
score is its share of the question's content words, damped for length (a long sentence
matches more words by chance), nudged by its passage's rank.

Before any of that, ``app.answer.sufficiency.assess`` decides whether the evidence answers
the question at all; when it does not, the answer is ``ABSTAIN`` (no sentence, no citation).
"""

from __future__ import annotations

from app.answer.attribution import support
from app.answer.sources import Source
from app.answer.sufficiency import assess
from retrieval.chunk import split_sentences
from retrieval.plan import names_page, subjects
from retrieval.text import tokenize

ABSTAIN = "I could not find an answer to this question in the sources I read."
# A further sentence must match the question at least this well, relative to the best.
KEEP = 0.6
# ... and a sentence from a page not cited yet must bring this share of the question's words
# that the chosen sentences lack (dev HotpotQA, tier base: citation precision 0.57 -> 0.71,
# gold-page recall 0.74 -> 0.71).
GAIN = 0.2
_ENDINGS = ".!?\"')\u201d\u2019"
_LONG = 30  # words; longer sentences are damped


def _is_prose(sentence: str) -> bool:
    """A full sentence, not a heading, a table row or a caption."""
    return (
        len(sentence.split()) >= 6
        and sentence[-1:] in _ENDINGS
        and not sentence.startswith("|")
        and "\n" not in sentence
    )


Candidate = tuple[float, int, int, str]  # score, source number, offset, sentence


def _candidates(question: str, sources: list[Source]) -> list[Candidate]:
    out: list[Candidate] = []
    for source in sources:
        for rank, passage in enumerate(sorted(source.passages, key=lambda p: -p.score)):
            for s, e in split_sentences(passage.text):
                sentence = passage.text[s:e].strip()
                if not _is_prose(sentence):
                    continue
                score = support(question, sentence)
                if score <= 0:
                    continue
                words = len(sentence.split())
                damp = min(1.0, _LONG / words) ** 0.5
                tie = 0.01 / (1 + rank) + 0.001 / source.number
                out.append((score * damp + tie, source.number, passage.start + s, sentence))
    out.sort(key=lambda c: -c[0])
    return out


def extractive_answer(
    question: str, sources: list[Source], *, most: int = 3, answerable: bool | None = None
) -> str:
    """Up to ``most`` cited sentences answering ``question`` from ``sources``, or ``ABSTAIN``.

    ``answerable`` is the evidence check's verdict when the caller already has it; ``None``
    runs ``sufficiency.assess`` here.
    """
    if answerable is None:
        answerable = assess(question, sources).answered
    candidates = _candidates(question, sources) if answerable else []
    if not candidates:
        return ABSTAIN
    best = candidates[0][0]
    chosen: list[Candidate] = []
    docs = {s.number: s.document for s in sources}
    for name in subjects(question)[:most]:
        wanted = set(tokenize(name))
        # The subject's own page speaks for it best; else any sentence that names it.
        own = [c for c in candidates if names_page(name, docs[c[1]].title, docs[c[1]].url)]
        mentions = [c for c in candidates if wanted and wanted <= set(tokenize(c[3]))]
        own_mentions = [c for c in own if c in mentions]
        pick = next(iter(own_mentions or own or mentions), None)
        if pick is not None and pick not in chosen:
            chosen.append(pick)
    if candidates[0] not in chosen:
        chosen.insert(0, candidates[0])
    terms = set(tokenize(question))
    covered = {t for c in chosen for t in tokenize(c[3])}
    for cand in candidates:
        if len(chosen) >= most:
            break
        if cand in chosen or cand[0] < KEEP * best:
            continue
        # A sentence from a page not yet cited must add part of the question not yet covered:
        # a near-duplicate from another page only adds a citation that is probably off-target.
        words = set(tokenize(cand[3]))
        new = (terms & words) - covered
        if len(new) >= GAIN * len(terms) or cand[1] in {c[1] for c in chosen}:
            chosen.append(cand)
            covered |= words
    return " ".join(f"{sentence} [{number}]" for _, number, _, sentence in chosen[:most])
