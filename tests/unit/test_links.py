"""Output safety: only links to fetched sources, no images, no invisible characters."""

from __future__ import annotations

import random

import pytest

from app.answer.links import LinkFilter, clean_links

ALLOWED = {"https://en.wikipedia.org/wiki/Paris", "http://127.0.0.2:8080/wiki/Ed_Wood"}

CASES = [
    ("Paris is big [1].", "Paris is big [1]."),
    ("See [the page](https://evil.example/x) now.", "See the page now."),
    (
        "See [Paris](https://en.wikipedia.org/wiki/Paris/) now.",
        "See [Paris](https://en.wikipedia.org/wiki/Paris/) now.",
    ),
    ("Visit https://evil.example/login?next=1. Then stop.", "Visit . Then stop."),
    (
        "Read http://127.0.0.2:8080/wiki/Ed_Wood, it helps.",
        "Read http://127.0.0.2:8080/wiki/Ed_Wood, it helps.",
    ),
    ("Go to www.evil.example today", "Go to  today"),
    ("A pixel ![x](https://evil.example/p.png) here.", "A pixel  here."),
    ("Hidden\u200b tag\U000e0041\U000e0042 text\u202e.", "Hidden tag text."),
    ("Brackets [like this] stay [2].", "Brackets [like this] stay [2]."),
    ("Wow! Great.", "Wow! Great."),
    ("Ends with a link https://evil.example", "Ends with a link "),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_clean_links(text: str, expected: str) -> None:
    assert clean_links(text, ALLOWED) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_streamed_links_match_whole_text_for_any_split(text: str, expected: str) -> None:
    rng = random.Random(3)
    for _ in range(200):
        k = min(len(text) - 1, rng.randint(1, 8))
        cuts = sorted(rng.sample(range(1, len(text)), k=k))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        link_filter = LinkFilter(ALLOWED)
        out = "".join(link_filter.feed(p) for p in pieces) + link_filter.flush()
        assert out == expected, pieces


def test_plain_words_are_not_held_back() -> None:
    link_filter = LinkFilter(ALLOWED)
    assert link_filter.feed("The answer is ") == "The answer is "
    assert link_filter.feed("forty two") == "forty two"
    # A word that may be the start of a URL waits for the next space.
    assert link_filter.feed(" htt") == " "
    assert link_filter.feed("p://evil.example/ and more") == " and more"
