"""The evidence check decides, from the ranked passages, whether they answer the question."""

from __future__ import annotations

from app.answer.extractive import ABSTAIN, extractive_answer
from app.answer.prompt import INSUFFICIENT_NOTE, build_messages
from app.answer.sources import Source
from app.answer.sufficiency import MIN_COVERAGE, assess, named_terms
from retrieval.types import Document, Passage


def _src(number: int, text: str, title: str = "") -> Source:
    return Source(
        number=number,
        document=Document(
            url=f"http://site{number}.test/p", title=title or f"T{number}", text=text
        ),
        passages=(Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0),),
    )


TOWER = _src(
    1,
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 "
    "for the World's Fair. The tower is 330 metres tall and has three levels for visitors.",
)
FILLER = _src(2, "Paris is the capital of France. It has many museums and a large river.")


def test_answering_evidence_passes_with_its_coverage() -> None:
    verdict = assess("When was the Eiffel Tower completed?", [TOWER, FILLER])
    assert verdict.answered and verdict.reason == ""
    assert verdict.coverage == 1.0


def test_no_sources_or_no_content_words_is_no_evidence() -> None:
    assert assess("When was the Eiffel Tower completed?", []).reason == "no evidence"
    assert assess("Who is it?", [TOWER]).reason == "no evidence"


def test_evidence_about_something_else_has_low_coverage() -> None:
    verdict = assess("Which enzyme digests lactose in the small intestine?", [TOWER, FILLER])
    assert not verdict.answered
    assert verdict.reason == "low coverage"
    assert verdict.coverage < MIN_COVERAGE


def test_a_missing_name_with_middling_coverage_is_insufficient() -> None:
    # "Gustave Eiffel" is the subject; "Brooklyn" appears nowhere in the evidence.
    verdict = assess("How tall is the Brooklyn tower in Paris?", [TOWER])
    assert not verdict.answered and verdict.reason == "named term missing"
    assert named_terms("How tall is the Brooklyn tower in 1889?") == {"brooklyn", "1889"}


def test_number_questions_need_a_number_in_the_best_windows() -> None:
    source = _src(1, "The village library lends books to every resident of the valley.")
    verdict = assess("How many books does the village library lend?", [source])
    assert not verdict.answered and verdict.reason == "no number"
    counted = _src(1, "The village library lends 4,000 books to every resident each year.")
    assert assess("How many books does the village library lend?", [counted]).answered


def test_date_questions_need_a_date_in_the_best_windows() -> None:
    source = _src(1, "The old stone bridge over the river was rebuilt by the town council.")
    verdict = assess("When was the old stone bridge rebuilt?", [source])
    assert not verdict.answered and verdict.reason == "no date"
    dated = _src(1, "The old stone bridge over the river was rebuilt by the council in 1820.")
    assert assess("When was the old stone bridge rebuilt?", [dated]).answered


def test_a_negated_question_needs_a_negation_in_the_best_window() -> None:
    verdict = assess("Which levels of the Eiffel Tower are not open to visitors?", [TOWER])
    assert not verdict.answered and verdict.reason == "negation"
    closed = _src(1, "The third level of the Eiffel Tower is not open to visitors in winter.")
    assert assess("Which level of the Eiffel Tower is not open to visitors?", [closed]).answered


def test_two_hop_questions_are_covered_by_windows_from_two_sources() -> None:
    film = _src(1, "Kiss and Tell is a 1945 comedy film starring Shirley Temple as Corliss Archer.")
    person = _src(2, "Shirley Temple later served as United States Chief of Protocol.")
    verdict = assess(
        "What government position was held by the actress who played Corliss Archer in Kiss "
        "and Tell?",
        [film, person],
    )
    assert verdict.answered
    alone = assess(
        "What government position was held by the actress who played Corliss Archer in Kiss "
        "and Tell?",
        [person],
    )
    assert alone.coverage < verdict.coverage


def test_extractive_answer_abstains_when_the_evidence_is_insufficient() -> None:
    question = "How tall is the Brooklyn tower in Paris?"
    assert extractive_answer(question, [TOWER]) == ABSTAIN
    # The caller's verdict wins over the check.
    assert extractive_answer(question, [TOWER], answerable=True) != ABSTAIN
    assert "[1]" in extractive_answer("When was the Eiffel Tower completed?", [TOWER])


def test_the_prompt_warns_the_model_only_when_the_evidence_is_insufficient() -> None:
    plain = build_messages([], "q?", [TOWER])
    warned = build_messages([], "q?", [TOWER], insufficient=True)
    assert INSUFFICIENT_NOTE not in plain[0]["content"]
    assert warned[0]["content"].endswith(INSUFFICIENT_NOTE)
    # The note is ours: it goes to the system turn, never into the fenced user turn.
    assert INSUFFICIENT_NOTE not in warned[-1]["content"]
