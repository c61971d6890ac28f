"""Reasoning from the evidence: support, agreement, disagreement on numbers."""

from __future__ import annotations

from app.answer.attribution import Claim, claims_of
from app.answer.basis import attribute
from app.answer.reasoning import explain
from app.answer.sources import Source
from retrieval.plan import covers
from retrieval.types import Document, Passage


def _source(number: int, text: str, url: str) -> Source:
    doc = Document(url=url, title=f"Page {number}", text=text)
    passage = Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0)
    return Source(number=number, document=doc, passages=(passage,))


SOURCES = [
    _source(1, "The Eiffel Tower was completed in 1889 in Paris.", "https://a.org/eiffel"),
    _source(2, "Gustave Eiffel's tower in Paris was completed in 1889.", "https://b.net/tower"),
    _source(3, "The Eiffel Tower in Paris was completed in 1887, some say.", "https://c.com/x"),
    _source(4, "Bananas are yellow.", "https://d.io/fruit"),
]


def test_reasoning_names_support_agreement_and_disagreement() -> None:
    text = "The Eiffel Tower in Paris was completed in 1889 [1]."
    reasoning = attribute(text, SOURCES).basis.reasoning
    assert 'Sentence 1 ("The Eiffel Tower in Paris was completed in…")' in reasoning
    assert "is supported by [1] a.org" in reasoning
    assert "[2] b.net also agrees" in reasoning
    assert "[3] c.com gives 1887 instead" in reasoning
    assert "d.io" not in reasoning


def test_reasoning_counts_unsupported_sentences() -> None:
    text = "The Eiffel Tower was completed in 1889 [1]. It is the best tower ever."
    reasoning = attribute(text, SOURCES).basis.reasoning
    assert "Sentence 2" in reasoning and "cites no source" in reasoning
    assert "1 of 2 sentences are supported" in reasoning


def test_reasoning_for_a_value_and_for_abstention() -> None:
    claim = Claim(start=0, end=0, text="1889", sources=(1,))
    value = explain("year", [claim], [1.0], SOURCES, abstained=False, supported=0.5)
    assert value.startswith('The value "1889" is supported by [1] a.org')
    nothing = explain(
        "content", claims_of("No idea."), [0.0], SOURCES, abstained=True, supported=0.5
    )
    assert "None of the 4 sources read supports an answer" in nothing


def test_covers_is_true_only_when_every_question_term_is_present() -> None:
    passages = [s.passages[0] for s in SOURCES]
    assert covers("When was the Eiffel Tower completed?", passages)
    assert not covers("Who designed the Eiffel Tower's elevators?", passages)
