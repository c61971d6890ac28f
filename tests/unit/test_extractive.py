"""Extractive answers pick the best-supported sentences and cite them."""

from __future__ import annotations

from app.answer.basis import attribute
from app.answer.extractive import ABSTAIN, extractive_answer
from app.answer.sources import Source
from retrieval.types import Document, Passage


def _src(number: int, url: str, text: str) -> Source:
    return Source(
        number=number,
        document=Document(url=url, title=f"T{number}", text=text),
        passages=(Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0),),
    )


SOURCES = [
    _src(
        1, "http://a.test/ed", "Edward Wood Jr. was an American filmmaker and actor. He liked hats."
    ),
    _src(2, "http://b.test/scott", "Scott Derrickson is an American director and screenwriter."),
]


def test_answer_cites_each_sentence_and_basis_is_verbatim() -> None:
    text = extractive_answer("Were Scott Derrickson and Ed Wood both American filmmakers?", SOURCES)
    assert "[1]" in text and "[2]" in text
    result = attribute(text, SOURCES)
    urls = {c.url for c in result.basis.citations}
    assert urls == {"http://a.test/ed", "http://b.test/scott"}
    for citation in result.basis.citations:
        doc = next(s.document for s in SOURCES if s.document.url == citation.url)
        assert all(e in doc.text for e in citation.excerpts)
    assert result.basis.confidence in {"medium", "high"}
    assert result.annotations and all(
        text[a.url_citation.start_index : a.url_citation.end_index].endswith("]")
        for a in result.annotations
    )


def test_no_overlap_abstains_with_low_confidence() -> None:
    text = extractive_answer("Quantum chromodynamics gluon?", SOURCES)
    assert text == ABSTAIN
    result = attribute(text, SOURCES, abstained=True)
    assert result.basis.citations == []
    assert result.basis.confidence == "low"
    assert result.annotations == []
