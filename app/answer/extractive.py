"""Answers without an LLM: the best-supported sentences of the ranked passages, each cited.

Per named subject of the question (``retrieval.plan.subjects``) the best sentence that
mentions it comes first, so "Who is older, Annie Morton or Terry Richardson?" gets a
sentence about each; then the best remaining sentences fill up to ``most``. A sentence's
score is its share of the question's content words, damped for length (a long sentence
matches more words by chance), nudged by its passage's rank.
"""

from __future__ import annotations

from app.answer.attribution import support
from app.answer.sources import Source
from retrieval.chunk import split_sentences
from retrieval.plan import names_page, subjects
from retrieval.text import tokenize

ABSTAIN = "I could not find an answer to this question in the sources I read."
# A further sentence must match the question at least this well, relative to the best.
KEEP = 0.6
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


def extractive_answer(question: str, sources: list[Source], *, most: int = 3) -> str:
    """Up to ``most`` cited sentences answering ``question`` from ``sources``, or ``ABSTAIN``."""
    candidates = _candidates(question, sources)
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
    for cand in candidates:
        if len(chosen) >= most:
            break
        if cand not in chosen and cand[0] >= KEEP * best:
            chosen.append(cand)
    return " ".join(f"{sentence} [{number}]" for _, number, _, sentence in chosen)
