"""Marker correction: wrong markers replaced, unsupported ones dropped, missing ones added."""

from __future__ import annotations

import random

import pytest

from app.answer.attribution import MarkerFilter
from app.answer.correct import MarkerCorrector, SupportIndex, correct_markers
from app.answer.sources import Source
from retrieval.types import Document, Passage


def _source(number: int, text: str, url: str) -> Source:
    doc = Document(url=url, title=f"Page {number}", text=text)
    return Source(
        number=number,
        document=doc,
        passages=(Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0),),
    )


SOURCES = [
    _source(1, "Paris is the capital of France. It has two million inhabitants.", "https://a.org/"),
    _source(
        2, "Berlin is the capital of Germany. The Spree flows through Berlin.", "https://b.de/"
    ),
    _source(3, "Ed Wood was an American filmmaker. He directed Plan 9.", "https://c.com/"),
    _source(4, "Scott Derrickson is an American director.", "https://d.net/"),
]

CASES = [
    # Right markers: the text is returned byte for byte.
    ("Paris is the capital of France [1].", "Paris is the capital of France [1]."),
    (
        "Paris is the capital of France. [1] Berlin is too. ",
        "Paris is the capital of France. [1] Berlin is too. ",
    ),
    # A wrong marker is replaced by the source that supports the sentence.
    ("Paris is the capital of France [2].", "Paris is the capital of France [1]."),
    ("The Spree flows through Berlin. [3]", "The Spree flows through Berlin. [2]"),
    # A marker on a sentence nothing supports is dropped, with the space before it.
    ("I like cheese a lot [1].", "I like cheese a lot."),
    # A source that adds nothing the others miss is dropped from the group.
    ("Paris is the capital of France [1][2].", "Paris is the capital of France [1]."),
    # Two sources that each support half of a joined claim both stay.
    (
        "Ed Wood was an American filmmaker and Scott Derrickson is an American director [3][4].",
        "Ed Wood was an American filmmaker and Scott Derrickson is an American director [3][4].",
    ),
    # An uncited sentence a source supports strongly gains its marker.
    ("Berlin is the capital of Germany.", "Berlin is the capital of Germany. [2]"),
    # ... but a short or weakly matched one does not.
    ("Yes.", "Yes."),
    ("Germany has many rivers.", "Germany has many rivers."),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_correct_markers(text: str, expected: str) -> None:
    assert correct_markers(text, SOURCES) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_streamed_correction_matches_whole_text_for_any_split(text: str, expected: str) -> None:
    rng = random.Random(11)
    for _ in range(150):
        k = min(len(text) - 1, rng.randint(1, 7))
        cuts = sorted(rng.sample(range(1, len(text)), k=k))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        marker_filter = MarkerFilter({1, 2, 3, 4})
        corrector = MarkerCorrector(SOURCES)
        out = [corrector.feed(marker_filter.feed(p)) for p in pieces]
        out.append(corrector.feed(marker_filter.flush()) + corrector.flush())
        assert "".join(out) == expected, pieces


def test_words_stream_at_once_and_only_markers_wait_for_the_sentence() -> None:
    corrector = MarkerCorrector(SOURCES)
    assert corrector.feed("Paris is the capital") == "Paris is the capital"
    assert corrector.feed(" of France") == " of France"
    # The marker waits until the sentence is complete: it may need correcting.
    assert corrector.feed(" [2].") == ""
    assert corrector.feed(" Berlin") == " [1]. Berlin"


def test_support_index_prefers_the_best_sentence_not_the_sum() -> None:
    index = SupportIndex(SOURCES)
    assert index.choose("Plan 9 was directed by Ed Wood", (4,)) == (3,)
    assert index.choose("Plan 9 was directed by Ed Wood", ()) == (3,)
    assert index.choose("Something unrelated entirely here", (1, 2)) == ()
