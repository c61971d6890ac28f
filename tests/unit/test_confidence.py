"""Confidence follows the calibrated rule: focus or corroboration, support and coverage."""

from __future__ import annotations

from app.answer import engine
from app.answer.basis import Signals, _confidence, attribute
from app.answer.extractive import ABSTAIN
from app.answer.sources import Source, number_sources
from app.answer.sufficiency import assess, open_question
from app.openai_types import ChatMessage
from retrieval.types import Document, Evidence, Passage

QUESTION = "When was the Eiffel Tower in Paris completed?"
TOWER = "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
ECHO = "Completed in 1889, the Eiffel Tower in Paris was built for the World's Fair."
RIVER = "The Seine is a river that flows through Paris to the English Channel."


def _src(number: int, host: str, text: str) -> Source:
    return Source(
        number=number,
        document=Document(url=f"http://{host}/page", title=f"T{number}", text=text),
        passages=(Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0),),
    )


def _signals(**changes: float) -> Signals:
    values: dict[str, float | bool] = {
        "claims": 1,
        "supported": 1.0,
        "sources": 1,
        "domains": 1,
        "agreement": 0.0,
        "coverage": 1.0,
        "names": 1.0,
        "typed": True,
    }
    values.update(changes)
    return Signals(**values)  # type: ignore[arg-type]


def test_one_source_covering_the_question_is_high() -> None:
    result = attribute(f"{TOWER} [1]", [_src(1, "a.test", TOWER)], question=QUESTION)
    assert result.basis.confidence == "high"


def test_independent_sites_saying_the_same_thing_are_high() -> None:
    sources = [_src(1, "a.test", TOWER), _src(2, "b.test", ECHO)]
    result = attribute(f"{TOWER} [1][2]", sources, question=QUESTION)
    assert result.basis.confidence == "high"


def test_support_scattered_over_pages_is_medium() -> None:
    sources = [_src(1, "a.test", TOWER), _src(2, "b.test", RIVER)]
    result = attribute(f"{TOWER} [1] {RIVER} [2]", sources, question=QUESTION)
    assert result.basis.confidence == "medium"


def test_evidence_missing_the_question_is_low() -> None:
    sources = [_src(1, "a.test", RIVER)]
    result = attribute(f"{RIVER} [1]", sources, question=QUESTION)
    assert result.basis.confidence == "low"


def test_the_rule_threshold_by_threshold() -> None:
    assert _confidence(_signals()) == "high"
    assert _confidence(_signals(sources=0)) == "low"
    assert _confidence(_signals(supported=0.4)) == "low"
    assert _confidence(_signals(coverage=0.59)) == "low"
    assert _confidence(_signals(names=0.4)) == "low"
    assert _confidence(_signals(coverage=0.89)) == "medium"
    assert _confidence(_signals(typed=False)) == "medium"
    assert _confidence(_signals(names=0.5)) == "medium"
    assert _confidence(_signals(supported=0.9)) == "medium"
    assert _confidence(_signals(sources=2, domains=2)) == "medium"
    assert _confidence(_signals(sources=2, domains=2, agreement=0.5)) == "high"
    # Two sources on one domain are not independent.
    assert _confidence(_signals(sources=2, domains=1, agreement=1.0)) == "medium"


def test_a_number_question_needs_a_number_in_the_excerpts_for_high() -> None:
    asked = "How many visitors came to the Eiffel Tower in Paris?"
    vague = "Visitors came to the Eiffel Tower in Paris from many countries."
    counted = "As many as 2,000 visitors came to the Eiffel Tower in Paris on its first day."
    result = attribute(f"{vague} [1]", [_src(1, "a.test", vague)], question=asked)
    assert result.basis.confidence == "medium"
    result = attribute(f"{counted} [1]", [_src(1, "a.test", counted)], question=asked)
    assert result.basis.confidence == "high"


def test_without_a_question_coverage_counts_as_full() -> None:
    result = attribute(f"{TOWER} [1]", [_src(1, "a.test", TOWER)])
    assert result.basis.confidence == "high"


def _research(question: str, texts: list[str]) -> engine.Research:
    documents = tuple(
        Document(url=f"http://s{i}.test/p", title=f"T{i}", text=t) for i, t in enumerate(texts)
    )
    passages = tuple(
        Passage(doc=i, start=0, end=len(t), text=t, score=1.0) for i, t in enumerate(texts)
    )
    evidence = Evidence(queries=(question,), hits=(), documents=documents, passages=passages)
    sources = number_sources(evidence)
    return engine.Research(
        question=question,
        messages=[ChatMessage(role="user", content=question)],
        evidence=evidence,
        sources=sources,
        sufficiency=assess(question, sources),
    )


def test_finalize_marks_insufficient_evidence_low_even_if_the_model_cites() -> None:
    found = _research("How tall is the Brooklyn tower in Paris?", [TOWER])
    assert found.insufficient
    # A model that ignores the warning and answers anyway: its citation stays, checked.
    final = engine.finalize(found, f"{TOWER} [1]", 0, 0)
    basis = final.basis[0]
    assert basis.confidence == "low"
    assert basis.reasoning.startswith("Footnote's evidence check found")
    assert "named term missing" in basis.reasoning
    assert [c.url for c in basis.citations] == ["http://s0.test/p"]


def test_finalize_of_an_abstention_cites_nothing_with_low_confidence() -> None:
    found = _research("How tall is the Brooklyn tower in Paris?", [TOWER])
    final = engine.finalize(found, ABSTAIN, 0, 0)
    assert final.basis[0].confidence == "low"
    assert final.basis[0].citations == [] and final.annotations == []
    answered = _research(QUESTION, [TOWER])
    assert not answered.insufficient
    assert engine.finalize(answered, f"{TOWER} [1]", 0, 0).basis[0].confidence == "high"


def test_why_how_and_pronoun_questions_are_never_high() -> None:
    source = [_src(1, "a.test", TOWER)]
    answer = f"{TOWER} [1]"
    for question in (
        "Why was the Eiffel Tower in Paris completed in 1889?",
        "How was the Eiffel Tower in Paris completed?",
        "When was it completed, the Eiffel Tower in Paris?",
    ):
        assert attribute(answer, source, question=question).basis.confidence == "medium", question
    # "How many" and "how long" ask for a checkable figure, as "when" does.
    counted = "How many years after 1880 was the Eiffel Tower in Paris completed?"
    assert open_question(counted) is False
    assert attribute(answer, source, question=QUESTION).basis.confidence == "high"
