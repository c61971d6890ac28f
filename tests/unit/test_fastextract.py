"""The selectolax fast path: real corpus pages take it cleanly; unclear pages fall back."""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser

from retrieval.extract import TrafilaturaExtractor, normalise_blocks
from retrieval.fastextract import fast_main_text
from retrieval.search.bundled import CorpusPage, default_data_path, read_pages
from retrieval.types import Page
from tests.unit.test_extract import BOILERPLATE, token_f1

# The template chrome test_extract checks, plus the comment/sidebar phrases of news and blogs.
CHROME = (
    *BOILERPLATE,
    "Related stories",
    "Popular now",
    "Leave a Reply",
    "Comments are moderated",
    "says:",
    "Recent Posts",
    "See also",
)


def squash(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


def fast_text(html: str) -> str | None:
    blocks = fast_main_text(LexborHTMLParser(html))
    return None if blocks is None else normalise_blocks(blocks)


@pytest.fixture(scope="module")
def pages() -> dict[str, CorpusPage]:
    return {p.path: p for p in read_pages(default_data_path())}


@pytest.mark.parametrize("site", [2, 3, 4])
def test_templated_pages_take_the_fast_path_without_chrome(
    pages: dict[str, CorpusPage], site: int
) -> None:
    chosen = [p for p in pages.values() if p.site == site][:40]
    assert len(chosen) >= 40
    taken = 0
    for page in chosen:
        text = fast_text(page.html)
        if text is None:
            continue
        taken += 1
        for paragraph in page.text.split("\n\n"):
            assert squash(paragraph) in squash(text), page.path
        for phrase in CHROME:
            if phrase not in page.text:
                assert phrase not in text, (page.path, phrase)
    assert taken >= 38


@pytest.mark.parametrize("path", ["/r/ars-1", "/r/herald-sun-1", "/r/la-nacion"])
def test_real_pages_on_the_fast_path_match_their_reference(
    pages: dict[str, CorpusPage], path: str
) -> None:
    page = pages[path]
    text = fast_text(page.html)
    assert text is not None
    assert token_f1(text, page.text) >= 0.97
    assert all(b and "\n" not in b and "  " not in b for b in text.split("\n\n"))


def test_code_blocks_keep_their_lines(pages: dict[str, CorpusPage]) -> None:
    text = fast_text(pages["/r/mercurial"].html)
    assert text is not None
    assert "\n\n$ hg init public\n\n" in text


def test_hidden_and_chrome_nodes_are_dropped() -> None:
    prose = "A sentence of ordinary article prose that runs long enough to count. " * 4
    html = (
        "<html><body><div class='cookie-banner'><p>This site uses cookies, sadly.</p></div>"
        f"<article><h1>Headline</h1><div class='byline'>By Someone</div><p>{prose}</p>"
        f"<p style='display: none'>HIDDEN_MARKER {prose}</p><p>{prose}</p>"
        "<ul class='share-tools'><li>Share on X</li></ul>"
        f"<p>{prose}</p><p>{prose}</p><p>{prose}</p>"
        "<h2>Related links</h2><ul><li><a href='/a'>One</a></li><li><a href='/b'>Two</a></li></ul>"
        "</article>"
        "<section id='comments'><p>First comment here, a long one to be sure.</p></section>"
        "</body></html>"
    )
    text = fast_text(html)
    assert text is not None
    assert text.startswith("Headline\n\nA sentence")
    for junk in ("cookies", "By Someone", "HIDDEN_MARKER", "Share on", "Related", "comment"):
        assert junk not in text


def test_a_page_without_a_main_container_falls_back(
    pages: dict[str, CorpusPage], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = pages["/r/simplyfound-1"]
    assert fast_text(page.html) is None
    called = []
    original = TrafilaturaExtractor._main_text

    def spy(self: TrafilaturaExtractor, html: str) -> str:
        called.append(html)
        return original(self, html)

    monkeypatch.setattr(TrafilaturaExtractor, "_main_text", spy)
    url = "http://corpus.test" + page.path
    doc = TrafilaturaExtractor().extract(
        Page(
            url=url,
            final_url=url,
            status=200,
            content_type="text/html",
            body=page.html.encode(),
            charset="utf-8",
        )
    )
    assert called and doc is not None
    assert token_f1(doc.text, page.text) >= 0.9


def test_short_or_link_heavy_pages_fall_back() -> None:
    assert fast_text("<html><body><p>Too short.</p></body></html>") is None
    links = "".join(f"<li><a href='/{i}'>Link number {i}</a></li>" for i in range(40))
    assert fast_text(f"<html><body><main><ul>{links}</ul></main></body></html>") is None
    assert fast_text("") is None


def test_fast_path_can_be_turned_off(pages: dict[str, CorpusPage]) -> None:
    page = next(p for p in pages.values() if p.site == 3)
    url = "http://corpus.test" + page.path
    raw = Page(
        url=url,
        final_url=url,
        status=200,
        content_type="text/html",
        body=page.html.encode(),
        charset="utf-8",
    )
    slow = TrafilaturaExtractor(fast_path=False).extract(raw)
    fast = TrafilaturaExtractor().extract(raw)
    assert slow is not None and fast is not None
    assert squash(fast.text) == squash(slow.text) == squash(page.text)
