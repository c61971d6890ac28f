"""Query planning: subjects get searches of their own; follow-ups borrow earlier subjects."""

from __future__ import annotations

import pytest

from retrieval.plan import keywords, plan_queries, resolve_followup, subjects


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
