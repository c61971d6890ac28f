"""BM25 passage ranking (gold passages first, selection rules) and the shared tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retrieval.rank import Bm25Ranker
from retrieval.search.bundled import BundledCorpus
from retrieval.text import normalize_date, stem, tokenize
from retrieval.types import Document, Passage

QUESTIONS = Path(__file__).resolve().parents[2] / "retrieval" / "data" / "questions.jsonl"


@pytest.fixture(scope="module")
def corpus() -> BundledCorpus:
    return BundledCorpus.load("http://corpus.test")


@pytest.fixture(scope="module")
def questions() -> dict[str, dict[str, Any]]:
    with QUESTIONS.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return {q["id"]: q for q in rows if q["answerable"]}


def documents_for(corpus: BundledCorpus, question: str) -> list[Document]:
    """The eight pages the bundled search returns, with the corpus's clean text."""
    pages = {corpus.url_for(p): p for p in corpus.pages}
    hits = corpus.search_sync(question, limit=8)
    return [Document(url=h.url, title=pages[h.url].title, text=pages[h.url].text) for h in hits]


def assert_valid(passages: list[Passage], documents: list[Document]) -> None:
    for p in passages:
        assert documents[p.doc].text[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "question_id",
    [
        "5a8b20335542996c9b8d5fb3",  # Muggsy Bogues, shortest NBA player
        "5a7bbb64554299042af8f7cc",  # Annie Morton or Terry Richardson, who is older
        "5ac0aa955542997d64295a49",  # the village of the "Fucking Hell" lager
        "5ab5895f554299637185c5c2",  # Schumann-Runge bands
    ],
)
def test_the_gold_sentence_is_in_the_top_passage(
    corpus: BundledCorpus, questions: dict[str, dict[str, Any]], question_id: str
) -> None:
    q = questions[question_id]
    documents = documents_for(corpus, q["question"])
    passages = Bm25Ranker().rank(q["question"], documents, limit=8)
    assert_valid(passages, documents)
    assert any(sentence in passages[0].text for sentence in q["gold_sentences"])


def test_gold_passages_rank_first_on_most_sampled_questions(
    corpus: BundledCorpus, questions: dict[str, dict[str, Any]]
) -> None:
    ranker = Bm25Ranker()
    first = anywhere = 0
    for q in questions.values():
        documents = documents_for(corpus, q["question"])
        passages = ranker.rank(q["question"], documents, limit=8)
        assert_valid(passages, documents)
        assert sum(len(p.text) for p in passages) <= 6000
        first += bool(passages) and any(s in passages[0].text for s in q["gold_sentences"])
        anywhere += any(s in p.text for p in passages for s in q["gold_sentences"])
    assert first / len(questions) >= 0.75
    assert anywhere / len(questions) >= 0.85


def relevant(topic: str, n: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} explains {topic} and why {topic} matters in practice number {i}."
        for i in range(n)
    )


def test_per_source_cap_and_diversity() -> None:
    documents = [
        Document(url="a", title="Volcano", text=relevant("volcano eruption", 6)),
        Document(url="b", title="Geology", text=relevant("volcano", 1) + "\n\nUnrelated rocks."),
        Document(url="c", title="Cooking", text="Bread needs flour, water and salt."),
    ]
    ranker = Bm25Ranker(per_source=2, passage_chars=100)
    passages = ranker.rank("volcano eruption", documents, limit=10)
    assert_valid(passages, documents)
    per_doc = [sum(p.doc == i for p in passages) for i in range(3)]
    assert per_doc == [2, 1, 0]
    # With room for only two, the second document's best beats the first one's second best.
    two = ranker.rank("volcano eruption", documents, limit=2)
    assert sorted(p.doc for p in two) == [0, 1]


def test_character_budget_is_honoured() -> None:
    documents = [
        Document(url=str(i), title=f"Doc {i}", text=relevant("glacier melting", 8))
        for i in range(4)
    ]
    passages = Bm25Ranker(max_chars=1000, passage_chars=200).rank(
        "glacier melting", documents, limit=50
    )
    assert passages
    assert sum(len(p.text) for p in passages) <= 1000
    assert len(passages) < 50


def test_relative_cut_off_drops_weak_passages() -> None:
    strong = "The Treaty of Westphalia ended the Thirty Years War in 1648 at Westphalia."
    weak = "A war of some other kind happened elsewhere, long after that."
    documents = [Document(url="a", title="", text=f"{strong}\n\n{weak}")]
    query = "Treaty of Westphalia Thirty Years War 1648"
    loose = Bm25Ranker(min_relative_score=0.0, passage_chars=100).rank(query, documents, limit=5)
    strict = Bm25Ranker(min_relative_score=0.9, passage_chars=100).rank(query, documents, limit=5)
    assert [p.text for p in loose] == [strong, weak]
    assert [p.text for p in strict] == [strong]


def test_title_tokens_reach_passages_that_use_pronouns() -> None:
    text = "She is best known for her role as Elektra Natchios in the series."
    titled = [Document(url="a", title="Élodie Yung", text=text)]
    untitled = [Document(url="a", title="", text=text)]
    query = "What is Elodie Yung known for?"
    assert [p.text for p in Bm25Ranker().rank(query, titled, limit=3)] == [text]
    assert Bm25Ranker().rank("Elodie Yung", untitled, limit=3) == []


def test_duplicate_passages_are_taken_once() -> None:
    text = "Copper conducts electricity well and is used in wiring."
    documents = [Document(url=u, title="Copper", text=text) for u in ("a", "b", "c")]
    passages = Bm25Ranker().rank("copper wiring", documents, limit=5)
    assert [p.text for p in passages] == [text]
    # A repeated block does not use up its document's slots either.
    other = "Copper wiring in old houses is often replaced."
    repeated = Document(url="d", title="Copper", text=f"{text}\n\n{text}\n\n{other}")
    ranked = Bm25Ranker(per_source=2, passage_chars=60).rank("copper wiring", [repeated], limit=5)
    assert sorted(p.text for p in ranked) == sorted([text, other])


def test_limit_and_degenerate_inputs() -> None:
    documents = [Document(url="a", title="Sun", text=relevant("solar wind", 5))]
    ranker = Bm25Ranker(passage_chars=100)
    assert len(ranker.rank("solar wind", documents, limit=2)) == 2
    assert ranker.rank("solar wind", documents, limit=0) == []
    assert ranker.rank("solar wind", [], limit=5) == []
    assert ranker.rank("the of and", documents, limit=5) == []
    assert ranker.rank("unrelated zebra", documents, limit=5) == []
    assert ranker.rank("solar", [Document(url="e", title="", text="")], limit=5) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_source": 0},
        {"min_relative_score": 1.5},
        {"passage_chars": 0},
        {"max_chars": 100, "passage_chars": 600},
    ],
)
def test_constructor_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Bm25Ranker(**kwargs)


# --- The shared tokenizer and date normalisation (retrieval.text) -----------------------


def test_tokenize_folds_drops_stopwords_and_stems_consistently() -> None:
    assert tokenize("The Élodie Yung's roles, U.S. 1915!") == ["elodi", "yung", "role", "1915"]
    for family in (
        ["created", "creates", "creating", "create"],
        ["tornadoes", "tornado"],
        ["falling", "falls", "fall"],
        ["stopped", "stopping", "stops", "stop"],
        ["studies", "study"],
        ["matches", "match"],
    ):
        assert len({stem(word) for word in family}) == 1, family
    assert stem("glass") == "glass" and stem("status") == "status" and stem("bus") == "bus"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2011-01-14T21:20:00Z", "2011-01-14"),
        ("2024/08/27", "2024-08-27"),
        ("20110114", "2011-01-14"),
        ("January 14, 2011", "2011-01-14"),
        ("14 Jan 2011", "2011-01-14"),
        ("Tue, 14 Jan 2011 10:00:00 GMT", "2011-01-14"),
        ("2011-13-01", None),
        ("0999-01-01", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_date(value: str | None, expected: str | None) -> None:
    assert normalize_date(value) == expected


def test_a_strong_passage_lends_its_neighbour_a_share() -> None:
    first = "The Merit Network was formed in 1966 to connect Michigan universities. " * 6
    second = "It later ran the backbone of a national research network for a decade. " * 6
    doc = Document(url="m", title="Merit", text=f"{first.strip()}\n\n{second.strip()}")
    ranker = Bm25Ranker(passage_chars=450)
    scored = ranker.score(["merit", "michigan"], [doc])
    assert len(scored) >= 2
    # The second chunk shares no query word beyond the title, yet rises with its neighbour.
    alone = Bm25Ranker(passage_chars=450, neighbour_share=0.0).score(["merit", "michigan"], [doc])
    assert scored[-1].score > alone[-1].score
