"""Query planning: subjects get searches of their own; follow-ups borrow earlier subjects."""

from __future__ import annotations

import pytest

from retrieval.plan import (
    MAX_QUERY_CHARS,
    focus,
    keywords,
    plan_queries,
    resolve_followup,
    subjects,
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Were Scott Derrickson and Ed Wood of the same nationality?",
            ["Scott Derrickson", "Ed Wood"],
        ),
        (
            'The director of the romantic comedy "Big Stone Gap" is based in what New York city?',
            ["Big Stone Gap", "New York"],
        ),
        ("Who is older, Annie Morton or Terry Richardson?", ["Annie Morton", "Terry Richardson"]),
        ("What are auricles?", []),
        (
            "Is the Bank of England older than the Federal Reserve?",
            ["Bank of England", "Federal Reserve"],
        ),
    ],
)
def test_subjects(question: str, expected: list[str]) -> None:
    assert subjects(question) == expected


def test_two_subjects_each_get_a_query() -> None:
    plan = plan_queries("Were Scott Derrickson and Ed Wood of the same nationality?")
    assert plan.queries == (
        "Were Scott Derrickson and Ed Wood of the same nationality?",
        "Scott Derrickson",
        "Ed Wood",
    )


def test_budget_and_distinct_queries() -> None:
    plan = plan_queries("What are auricles?", most=3)
    assert plan.queries == ("What are auricles?", "auricles")
    assert len(plan_queries("Were Scott Derrickson and Ed Wood American?", most=1).queries) == 1


def test_keyword_form_drops_stopwords_keeps_case() -> None:
    assert keywords("What is the main judicial body of the EU?") == "main judicial body EU"


def test_followup_borrows_subjects_of_the_previous_turn() -> None:
    earlier = ["Who directed Doctor Strange?"]
    assert resolve_followup("When was he born?", earlier) == "When was he born? (Doctor Strange)"
    # A self-contained question is left alone.
    assert resolve_followup("Where is Lawrence, Kansas?", earlier) == "Where is Lawrence, Kansas?"
    plan = plan_queries("And its sequel?", earlier)
    assert "Doctor Strange" in plan.question
    assert "Doctor Strange" in plan.queries


def test_names_page_by_title_or_slug() -> None:
    from retrieval.plan import names_page

    assert names_page("Ed Wood", "Ed Wood (film)")
    assert names_page("Ed Wood", "Ed Wood - Openpedia")
    assert names_page("Boots Are Made for Walkin", "These Boots Are Made for Walkin'")
    assert names_page(
        "Adriana Trigiani", "Adriana Trigiani, explained", "http://n.test/2011/08/adriana-trigiani"
    )
    assert names_page("Hayden", "", "http://w.test/wiki/Hayden_(musician)")
    assert not names_page("Ed Wood", "Ed Woodson", "http://w.test/wiki/Ed_Woodson")
    assert not names_page("", "Anything")


def test_followups_name_the_next_hop_not_what_was_read() -> None:
    from retrieval.plan import followup_queries
    from retrieval.types import Document, Passage

    text = (
        "Big Stone Gap is a 2014 American romantic comedy film written and directed by "
        "Adriana Trigiani. It was shot in Virginia."
    )
    film = Document(
        url="http://w.test/wiki/Big_Stone_Gap_(film)", title="Big Stone Gap (film)", text=text
    )
    passage = Passage(doc=0, start=0, end=len(text), text=text, score=5.0)
    question = 'The director of the romantic comedy "Big Stone Gap" is based in what New York city?'
    asked = (question, "Big Stone Gap", "New York")
    assert followup_queries(question, asked, [film], [passage], 1) == ("Adriana Trigiani",)
    # Once her page was read, she is no longer a next hop.
    her = Document(url="http://n.test/2011/08/adriana-trigiani", title="Adriana Trigiani", text="x")
    assert "Adriana Trigiani" not in followup_queries(question, asked, [film, her], [passage], 2)


def test_a_long_turn_is_searched_by_its_question() -> None:
    pasted = " ".join(f"Sentence number {i} of a pasted report." for i in range(500))
    asked = "Who wrote the report?"
    assert focus(f"{pasted} {asked}") == asked
    plan = plan_queries(f"{pasted} {asked}")
    assert plan.question == asked
    assert all(len(q) <= MAX_QUERY_CHARS for q in plan.queries)


def test_a_long_turn_without_a_question_is_cut_at_a_word() -> None:
    text = "word " * 10_000
    cut = focus(text)
    assert len(cut) <= MAX_QUERY_CHARS and cut.endswith("word")
    assert focus("Who directed Ed Wood?") == "Who directed Ed Wood?"
