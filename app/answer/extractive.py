"""Answers without an LLM: the best-supported sentences of the ranked passages, each cited."""

from __future__ import annotations

from app.answer.attribution import support
from app.answer.sources import Source
from retrieval.chunk import split_sentences

ABSTAIN = "I could not find an answer to this question in the sources I read."


def extractive_answer(question: str, sources: list[Source], *, most: int = 3) -> str:
    """Pick up to ``most`` sentences that best match the question, one per source first.

    A sentence's score is its share of the question's content words, nudged by its
    passage's rank so ties go to the better passage.
    """
    candidates: list[tuple[float, int, int, str]] = []
    for source in sources:
        for rank, passage in enumerate(source.passages):
            for s, e in split_sentences(passage.text):
                sentence = passage.text[s:e].strip()
                score = support(question, sentence)
                if score > 0 and len(sentence) >= 20:
                    tie = 0.01 / (1 + rank) + 0.001 / source.number
                    candidates.append((score + tie, source.number, passage.start + s, sentence))
    if not candidates:
        return ABSTAIN
    candidates.sort(key=lambda c: -c[0])
    best = candidates[0][0]
    chosen: list[tuple[float, int, int, str]] = []
    used: set[int] = set()
    # First pass one sentence per source, second pass fills up; weak sentences stay out.
    for distinct in (True, False):
        for cand in candidates:
            if len(chosen) >= most:
                break
            if cand in chosen or cand[0] < 0.5 * best or (distinct and cand[1] in used):
                continue
            chosen.append(cand)
            used.add(cand[1])
    return " ".join(f"{sentence} [{number}]" for _, number, _, sentence in chosen)
