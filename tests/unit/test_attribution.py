"""Marker filtering (whole and streamed), claim spans and verbatim excerpts."""

from __future__ import annotations

import random

import pytest

from app.answer.attribution import MarkerFilter, best_excerpts, claims_of, clean_markers
from app.answer.sources import Source
from retrieval.types import Document, Passage

CASES = [
    ("Paris is the capital [1].", {1}, "Paris is the capital [1]."),
    ("Paris is the capital [7].", {1}, "Paris is the capital."),
    ("A [1, 2] and B [3].", {1, 3}, "A [1] and B [3]."),
    ("A [1][9][2].", {1, 2}, "A [1][2]."),
    ("See ![x](http://evil/x.png) here [1].", {1}, "See  here [1]."),
    ("Prices rose [2024] sharply [12].", {1, 2}, "Prices rose [2024] sharply."),
    ("No markers at all!", {1}, "No markers at all!"),
]


@pytest.mark.parametrize(("text", "valid", "expected"), CASES)
def test_clean_markers(text: str, valid: set[int], expected: str) -> None:
    assert clean_markers(text, valid) == expected


@pytest.mark.parametrize(("text", "valid", "expected"), CASES)
def test_streamed_filter_matches_whole_text_for_any_split(
    text: str, valid: set[int], expected: str
) -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 6))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        f = MarkerFilter(valid)
        out = "".join(f.feed(p) for p in pieces) + f.flush()
        assert out == expected, pieces


def test_filter_holds_back_only_a_possible_marker() -> None:
    f = MarkerFilter({1})
    assert f.feed("The answer is 42") == "The answer is 42"
    assert f.feed(" [") == ""
    assert f.feed("1") == ""
    assert f.feed("]. Next") == " [1]. Next"


def test_claims_cover_sentence_and_markers() -> None:
    text = "Ed Wood was American [1]. Scott Derrickson is American. [2] Both share it."
    claims = claims_of(text)
    assert [c.sources for c in claims] == [(1,), (2,), ()]
    first, second, third = claims
    assert text[first.start : first.end] == "Ed Wood was American [1]."
    assert text[second.start : second.end] == "Scott Derrickson is American. [2]"
    assert text[third.start : third.end] == "Both share it."
    assert second.text == "Scott Derrickson is American."


def test_excerpts_are_verbatim_slices_of_the_document() -> None:
    text = (
        "Intro line here.\n\nEdward Davis Wood Jr. was an American filmmaker. "
        "He was born in 1924. Later life was hard."
    )
    start = text.index("Edward")
    passage = Passage(doc=0, start=start, end=len(text), text=text[start:], score=1.0)
    source = Source(
        number=1,
        document=Document(url="http://a/", title="Ed Wood", text=text),
        passages=(passage,),
    )
    excerpts = best_excerpts("Ed Wood was an American filmmaker.", source)
    assert excerpts
    sentence, score = excerpts[0]
    assert sentence in text
    assert "American filmmaker" in sentence
    assert score > 0.5
