"""Sentence splitting and passage chunking: edge cases and offset invariants."""

from __future__ import annotations

import pytest

from retrieval.chunk import chunk, paragraphs, split_sentences
from retrieval.search.bundled import default_data_path, read_pages


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith went to Washington. He met J. R. R. Tolkien there! Did he? Yes.",
            ["Dr. Smith went to Washington.", "He met J. R. R. Tolkien there!", "Did he?", "Yes."],
        ),
        (
            "The U.S. Army grew by 3.5 percent in 1915. The St. Louis team won.",
            ["The U.S. Army grew by 3.5 percent in 1915.", "The St. Louis team won."],
        ),
        (
            'He said "Stop." Then he left. (This was odd.) Next came [1] more.[2] The end',
            [
                'He said "Stop."',
                "Then he left.",
                "(This was odd.)",
                "Next came [1] more.[2]",
                "The end",
            ],
        ),
        (
            "He said \u201cStop.\u201d Then he left.",
            ["He said \u201cStop.\u201d", "Then he left."],
        ),
        (
            "The unit had one Officer Commanding: Lieut-Col. D. M. Grant. It was disbanded.",
            ["The unit had one Officer Commanding: Lieut-Col. D. M. Grant.", "It was disbanded."],
        ),
        (
            "See No. 5 and pp. 12-14, e.g. the appendix. It rained on Jan. 14 in Sept. 1920.",
            ["See No. 5 and pp. 12-14, e.g. the appendix.", "It rained on Jan. 14 in Sept. 1920."],
        ),
        ("It was May. The rain fell.", ["It was May.", "The rain fell."]),
        ("Prices rose in the U.S. in 2011.", ["Prices rose in the U.S. in 2011."]),
        ("Pi is 3.14159 roughly. Really.", ["Pi is 3.14159 roughly.", "Really."]),
        ("Wait... What happened?", ["Wait...", "What happened?"]),
        ("lower case. after a period stays", ["lower case. after a period stays"]),
        ("In 1915. The war went on.", ["In 1915.", "The war went on."]),
        ("First line\nSecond line. Third.", ["First line", "Second line.", "Third."]),
        ("  padded sentence.  \n\n  Another one.  ", ["padded sentence.", "Another one."]),
        ("", []),
        ("   \n\n  ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_sentence_spans_are_stripped_offsets_into_the_text() -> None:
    text = "  One sentence here.   Two sentences there!\n\n Three?  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["One sentence here.", "Two sentences there!", "Three?"]
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)
    assert spans == sorted(spans)


def test_paragraphs_split_on_blank_lines_only() -> None:
    text = "Alpha one.\nAlpha two.\n\n  \n\nBeta.\n\n"
    assert [text[s:e] for s, e in paragraphs(text)] == ["Alpha one.\nAlpha two.", "Beta."]


def test_short_paragraphs_that_fit_stay_separate_passages() -> None:
    first = "A" * 50 + " first paragraph ends here." + " x" * 100
    second = "The second paragraph is about something else entirely." + " y" * 100
    text = f"{first}\n\n{second}"
    spans = chunk(text, max_chars=600)
    assert [text[s:e] for s, e in spans] == [first.strip(), second.strip()]


def test_a_heading_joins_the_paragraph_after_it() -> None:
    body = "The Normans were the people who gave their name to Normandy. " * 4
    text = f"History\n\n{body.strip()}\n\nSee also"
    passages = [text[s:e] for s, e in chunk(text, max_chars=600)]
    assert passages[0].startswith("History\n\nThe Normans")
    assert passages[-1] == "See also"


def test_runs_of_short_blocks_are_packed() -> None:
    items = [f"- item number {i}" for i in range(40)]
    text = "\n\n".join(items)
    spans = chunk(text, max_chars=200)
    assert len(spans) < len(items) / 3
    assert all(e - s <= 200 for s, e in spans)


def test_a_long_paragraph_is_cut_between_sentences_into_balanced_pieces() -> None:
    text = " ".join(f"Sentence number {i} says something about topic {i}." for i in range(40))
    spans = chunk(text, max_chars=600)
    pieces = [text[s:e] for s, e in spans]
    assert len(pieces) >= 3
    assert all(p.endswith(".") and p[0].isupper() for p in pieces)
    assert all(len(p) <= 600 for p in pieces)
    assert min(len(p) for p in pieces) > 200


def test_a_sentence_longer_than_the_limit_is_cut_at_spaces() -> None:
    text = " ".join(["word"] * 500)
    spans = chunk(text, max_chars=120)
    assert all(0 < e - s <= 120 for s, e in spans)
    assert all(text[s:e].split(" ") == ["word"] * len(text[s:e].split(" ")) for s, e in spans)
    assert sum(len(text[s:e].split(" ")) for s, e in spans) == 500


def test_chunking_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk("text", max_chars=0)


def test_chunk_of_empty_text_is_empty() -> None:
    assert chunk("") == []
    assert chunk(" \n\n ") == []


def test_chunks_of_corpus_texts_keep_every_character_in_order() -> None:
    """Offsets invariant on real texts: stripped, bounded, ordered, nothing lost."""
    for page in read_pages(default_data_path())[::3]:
        text = page.text
        spans = chunk(text, max_chars=600)
        assert spans, page.path
        covered = 0
        previous_end = 0
        for start, end in spans:
            passage = text[start:end]
            assert passage == passage.strip() and passage
            assert end - start <= 600
            assert start >= previous_end
            assert text[previous_end:start].strip() == ""  # only whitespace between passages
            covered += len(passage.replace(" ", "").replace("\n", ""))
            previous_end = end
        assert text[previous_end:].strip() == ""
        assert covered == len(text.replace(" ", "").replace("\n", ""))
