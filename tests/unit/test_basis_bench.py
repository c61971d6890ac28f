"""The basis benchmark's metric functions, on hand-made answers with known figures."""

from __future__ import annotations

from typing import Any

from app.answer.prompt import INSUFFICIENT_NOTE
from bench.basis import (
    QUOTING_MODEL,
    BasisRow,
    Tally,
    basis_targets,
    bench_model,
    checkable,
    contains_answer,
    declines,
    excerpt_support,
    normalize_answer,
    score_answer,
    verbatim_count,
)
from tests.fakes.simweb import Question
from tests.fakes.upstream import NOT_FOUND_ANSWER, render_prompt

WIKI = "http://127.0.0.2:8000"
ED = "Edward Davis Wood Jr. was an American filmmaker, actor, writer, producer, and director."
SCOTT = "Scott Derrickson (born July 16, 1966) is an American director, screenwriter and producer."


def _question(**changes: Any) -> Question:
    question: dict[str, Any] = {
        "id": "q1",
        "source": "hotpotqa",
        "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
        "answers": ["American"],
        "answerable": True,
        "gold_pages": ["/wiki/Ed_Wood", "/wiki/Scott_Derrickson"],
        "gold_sentences": [ED, SCOTT],
        "gold_sentences_kind": "annotated",
    }
    question.update(changes)
    return question  # type: ignore[return-value]


FETCHED = {
    f"{WIKI}/wiki/Ed_Wood": f"Intro. {ED} More text.",
    f"{WIKI}/wiki/Scott_Derrickson": f"{SCOTT} He lives in Los Angeles.",
    f"{WIKI}/wiki/Other": "Another page about American filmmakers in general.",
}


def test_normalisation_and_containment_follow_squad() -> None:
    assert normalize_answer("The  Chief of Protocol!") == "chief of protocol"
    assert contains_answer("She was the chief of protocol [2].", ["Chief of Protocol"])
    # Whole words only: "1966" is not inside "19661".
    assert not contains_answer("Born in 19661.", ["1966"])
    assert not contains_answer("Yes, both were.", ["yes"])
    assert checkable(["Chief of Protocol"]) and not checkable(["yes"]) and not checkable([])


def test_declines_recognises_abstentions() -> None:
    assert declines(NOT_FOUND_ANSWER)
    assert declines("I could not find an answer to this question in the sources I read.")
    assert declines("The sources do not say when it opened.")
    assert declines("   ")
    assert not declines("Scott Derrickson is an American director [1].")


def test_excerpt_support_counts_overlapping_sentences_once() -> None:
    excerpts = [ED, "Scott Derrickson (born July 16, 1966)", "short"]
    assert excerpt_support([ED, SCOTT], excerpts) == 2
    assert excerpt_support([SCOTT], ["short", "unrelated sentence about a river"]) == 0


def test_verbatim_count_checks_each_excerpt_against_its_own_page() -> None:
    citations = [
        (f"{WIKI}/wiki/Ed_Wood", [ED]),
        # Scott's sentence is not on Ed Wood's page, and the last URL was never fetched.
        (f"{WIKI}/wiki/Ed_Wood", [SCOTT]),
        (f"{WIKI}/wiki/Missing", [ED]),
    ]
    assert verbatim_count(citations, FETCHED) == 1


def test_score_answer_tallies_precision_recall_support_and_levels() -> None:
    citations = [
        (f"{WIKI}/wiki/Ed_Wood", [ED]),
        (f"{WIKI}/wiki/Other", ["Another page about American filmmakers in general."]),
    ]
    text = f"{ED} [1] Another page about American filmmakers in general. [2]"
    shown = [f"{WIKI}/wiki/Ed_Wood", f"{WIKI}/wiki/Scott_Derrickson", f"{WIKI}/wiki/Other"]
    unfetched = [f"{WIKI}/wiki/Unfetched"]
    tally = score_answer(_question(), text, "high", citations, unfetched, FETCHED, shown)
    assert (tally.cited, tally.cited_gold) == (2, 1)  # precision 0.5
    assert (tally.gold_pages, tally.gold_pages_cited) == (2, 1)  # recall 0.5
    assert tally.gold_pages_shown == 2  # both gold pages were in the writer's sources
    assert (tally.gold_sentences, tally.gold_supported) == (2, 1)
    assert (tally.excerpts, tally.verbatim) == (2, 2)
    assert tally.unfetched == 1
    assert tally.levels["high"] == [1, 1] and tally.abstained == 0


def test_unanswerable_questions_count_abstentions_and_levels_only() -> None:
    question = _question(answerable=False, answers=[], gold_sentences=[])
    tally = score_answer(question, NOT_FOUND_ANSWER, "low", [], [], FETCHED)
    assert tally.abstained == 1 and tally.unanswerable_levels["low"] == 1
    assert tally.cited == 0 and tally.levels["low"] == [0, 0]
    total = Tally()
    total.add(tally)
    total.add(tally)
    assert total.questions == 2 and total.unanswerable_levels["low"] == 2


def test_the_bench_model_quotes_and_cites_or_obeys_the_note() -> None:
    prompt = render_prompt(
        "What nationality was Scott Derrickson?",
        [("Scott Derrickson", "u", SCOTT), ("Other", "v", "Rivers flow to the sea.")],
    )
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": prompt}]
    }
    assert bench_model(body) == f"{SCOTT} [1]"
    assert bench_model({**body, "model": QUOTING_MODEL}) == f"{SCOTT} [1]"
    body["messages"][0]["content"] = "x" + INSUFFICIENT_NOTE
    assert bench_model(body) == NOT_FOUND_ANSWER


def test_the_reading_model_follows_the_second_hop_the_quoting_model_does_not() -> None:
    film = "Kiss and Tell is a 1945 American comedy film starring Shirley Temple as Corliss Archer."
    temple = "As an adult, Shirley Temple served as Chief of Protocol of the United States."
    radio = "Meet Corliss Archer was a radio show; Corliss Archer was played in a film too."
    prompt = render_prompt(
        "What government position was held by the woman who portrayed Corliss Archer in the "
        "film Kiss and Tell?",
        [
            ("Kiss and Tell", "", film),
            ("Meet Corliss Archer", "", radio),
            ("Shirley Temple", "", temple),
        ],
    )
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    assert bench_model(body) == f"{film} [1] {temple} [3]"
    # The quoting model never reaches the page that holds the answer.
    quoted = bench_model({**body, "model": QUOTING_MODEL})
    assert quoted == f"{film} [1]"


def test_targets_compare_each_figure_with_its_goal() -> None:
    hotpot = Tally(questions=10, cited=10, cited_gold=9, gold_pages=20, gold_pages_cited=17)
    hotpot.levels["high"] = [10, 9]
    hotpot.levels["low"] = [10, 6]
    squad = Tally(questions=10, abstained=2, excerpts=5, verbatim=5)
    unanswerable = Tally(questions=10, abstained=8)
    strata = {"hotpotqa": hotpot, "squad": squad, "squad-unanswerable": unanswerable}
    rows = [BasisRow("base", "extractive", strata), BasisRow("core", "extractive", strata)]
    within = {t.name: t.within for t in basis_targets(rows)}
    assert within["HotpotQA citation precision, base, extractive"] is True  # 0.90
    assert within["HotpotQA gold-page recall, base, extractive"] is True  # 0.85
    assert within["HotpotQA gold-page recall, core, extractive"] is False  # 0.85 < 0.95
    assert within["excerpts verbatim (every tier and mode)"] is True
    assert within["'high' answers holding the gold answer, base, extractive"] is True
    assert within["'low' answers holding the gold answer, base, extractive"] is False  # 0.60
    assert within["unanswerable SQuAD abstained, base, extractive"] is True
    assert within["answerable SQuAD abstained, base, extractive"] is False  # 0.20
