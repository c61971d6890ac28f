"""Answers without an LLM: the sentences that answer the question, each cited.

``app.answer.sufficiency.assess`` first decides whether the evidence answers the question at
all; when it does not, the answer is ``ABSTAIN`` (no sentence, no citation). Otherwise
``app.answer.reader.read`` picks the best-answering sentence and, for a comparison or a
multi-hop question, the connected page that completes it; each is quoted verbatim and cited.
"""

from __future__ import annotations

from app.answer.reader import MOST, cited, read
from app.answer.sources import Source
from app.answer.sufficiency import assess

ABSTAIN = "I could not find an answer to this question in the sources I read."


def extractive_answer(
    question: str, sources: list[Source], *, most: int = MOST, answerable: bool | None = None
) -> str:
    """Up to ``most`` cited sentences answering ``question`` from ``sources``, or ``ABSTAIN``.

    ``answerable`` is the evidence check's verdict when the caller already has it; ``None``
    runs ``sufficiency.assess`` here.
    """
    if answerable is None:
        answerable = assess(question, sources).answered
    picks = read(question, sources, most=most) if answerable else []
    if not picks:
        return ABSTAIN
    return cited(picks)
