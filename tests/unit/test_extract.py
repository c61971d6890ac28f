"""Extraction with real trafilatura on real and templated pages, plus decoding and metadata."""

from __future__ import annotations

import collections
import pickle
import re
import statistics
from typing import Any

import pytest
import trafilatura

from retrieval.extract import TrafilaturaExtractor, decode_html
from retrieval.search.bundled import CorpusPage, default_data_path, read_pages
from retrieval.types import Document, Page

# Generated chrome of the wiki/news/blog templates: none of it may reach Document.text.
BOILERPLATE = (
    "This site uses cookies",
    "Accept all",
    "Reject non-essential",
    "Jump to content",
    "Create account",
    "Main page",
    "Random article",
    "From Openpedia",
    "This page was last edited",
    "Privacy policy",
    "Share this",
    "Subscribe",
    "Newsletters",
    "min read",
    "Posted on",
    "Retrieved",
    "Categories",
)


def html_page(
    body: str | bytes,
    *,
    content_type: str = "text/html",
    charset: str | None = None,
    url: str = "https://example.org/articles/some-page",
) -> Page:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return Page(
        url=url,
        final_url=url + "?final",
        status=200,
        content_type=content_type,
        body=raw,
        charset=charset,
    )


def token_f1(predicted: str, reference: str) -> float:
    a = collections.Counter(re.findall(r"\w+", predicted.lower()))
    b = collections.Counter(re.findall(r"\w+", reference.lower()))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def squash(text: str) -> str:
    return " ".join(text.replace("\u200e", "").replace("\u200f", "").split())


@pytest.fixture(scope="module")
def corpus() -> list[CorpusPage]:
    return read_pages(default_data_path())


@pytest.fixture(scope="module")
def extracted(corpus: list[CorpusPage]) -> dict[str, tuple[CorpusPage, Document]]:
    """Real pages and every third templated page of the bundled corpus, extracted once."""
    extractor = TrafilaturaExtractor()
    chosen = [p for p in corpus if p.site == 5] + [p for p in corpus if p.site != 5][::3]
    out = {}
    for page in chosen:
        doc = extractor.extract(html_page(page.html, url="http://corpus.test" + page.path))
        assert doc is not None, page.path
        out[page.path] = (page, doc)
    return out


def test_real_pages_match_their_reference_text(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    scores = [token_f1(doc.text, page.text) for page, doc in extracted.values() if page.site == 5]
    assert len(scores) >= 8
    assert min(scores) >= 0.85
    assert statistics.mean(scores) >= 0.93


def test_templated_pages_keep_every_paragraph_and_no_chrome(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    templated = [(p, d) for p, d in extracted.values() if p.site != 5]
    assert len(templated) > 50
    for page, doc in templated:
        text = squash(doc.text)
        for paragraph in page.text.split("\n\n"):
            assert squash(paragraph) in text, page.path
        for phrase in BOILERPLATE:
            if phrase not in page.text:
                assert phrase not in doc.text, (page.path, phrase)


def test_short_news_and_blog_articles_are_exactly_the_article(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    short = [(p, d) for p, d in extracted.values() if p.site in (3, 4) and len(p.text) < 250]
    assert short
    for page, doc in short:
        assert squash(doc.text) == squash(page.text), page.path


def test_titles_and_dates_of_templated_pages(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    for page, doc in extracted.values():
        if page.site != 5:
            assert doc.title == page.title
            assert doc.published == page.published


def test_title_of_a_real_page_drops_the_site_name(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    _, doc = extracted["/r/001"]
    assert doc.title == "Get your Frontend JavaScript Code Covered | Code"


def test_canonical_text_has_blank_line_separated_paragraphs(
    extracted: dict[str, tuple[CorpusPage, Document]],
) -> None:
    for page, doc in extracted.values():
        blocks = doc.text.split("\n\n")
        assert all(b and b == b.strip() and "\n" not in b and "  " not in b for b in blocks)
        assert "|---" not in doc.text, page.path
        assert doc.url == "http://corpus.test" + page.path + "?final"


@pytest.mark.parametrize(
    ("head", "body", "expected"),
    [
        (
            "<title>A long enough headline here | Example News</title>",
            "",
            "A long enough headline here",
        ),
        ("<title>Lewis - Clark</title>", "", "Lewis - Clark"),
        (
            '<meta property="og:title" content="Storm hits coast | Daily Planet">'
            '<meta property="og:site_name" content="Daily Planet"><title>ignored</title>',
            "",
            "Storm hits coast",
        ),
        ('<meta property="og:title" content="Q&amp;A | Cooking">', "", "Q&A | Cooking"),
        ("", "<h1>Heading  only</h1>", "Heading only"),
    ],
)
def test_title_rules(head: str, body: str, expected: str) -> None:
    html = f"<html><head>{head}</head><body>{body}<p>{'Some text here. ' * 30}</p></body></html>"
    doc = TrafilaturaExtractor().extract(html_page(html))
    assert doc is not None and doc.title == expected


def test_title_falls_back_to_the_first_line_of_text() -> None:
    html = f"<html><body><p>{'Plain words without any heading. ' * 20}</p></body></html>"
    doc = TrafilaturaExtractor().extract(html_page(html))
    assert doc is not None and doc.title.startswith("Plain words without any heading.")


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<meta property="article:published_time" content="2011-01-14T21:20:00Z">', "2011-01-14"),
        ('<meta name="date" content="January 5, 2019">', "2019-01-05"),
        ('<meta property="og:updated_time" content="2020/02/03">', "2020-02-03"),
        ('<time datetime="2024-08-27">August 27</time>', "2024-08-27"),
        ('<meta name="date" content="not a date">', None),
        ("", None),
    ],
)
def test_published_date(markup: str, expected: str | None) -> None:
    html = f"<html><head>{markup}</head><body><p>{'Dated text. ' * 40}</p></body></html>"
    doc = TrafilaturaExtractor().extract(html_page(html))
    assert doc is not None and doc.published == expected


def test_decoding_prefers_bom_then_charset_then_meta_then_utf8() -> None:
    cyrillic = "<html><body><p>Привет</p></body></html>".encode("cp1251")
    assert "Привет" in decode_html(cyrillic, "windows-1251")
    meta = '<html><head><meta charset="windows-1252"></head><p>café “q”</p>'.encode("cp1252")
    assert "café “q”" in decode_html(meta, None)
    http_equiv = (
        b'<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
        b"<p>caf\xe9 \x93q\x94</p>"
    )
    assert "café “q”" in decode_html(http_equiv, None)  # Latin-1 labels mean windows-1252
    bom = b"\xef\xbb\xbf<p>na\xc3\xafve</p>"
    assert decode_html(bom, "windows-1252") == "<p>naïve</p>"
    assert decode_html(b"<p>bad \xff byte</p>", None) == "<p>bad \ufffd byte</p>"
    assert "café" in decode_html("<p>café</p>".encode(), "no-such-charset")


def test_html_is_cut_before_parsing() -> None:
    head = "<html><body><article>" + "<p>Kept paragraph of ordinary text here.</p>" * 20
    html = head + "<p>" + "filler " * 2000 + "</p><p>UNREACHABLE_MARKER</p></article></body></html>"
    doc = TrafilaturaExtractor(max_html_bytes=len(head) + 200).extract(html_page(html))
    assert doc is not None
    assert "Kept paragraph" in doc.text
    assert "UNREACHABLE_MARKER" not in doc.text


def test_body_text_fallback_when_trafilatura_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(trafilatura, "extract", nothing)
    html = (
        "<html><head><title>Fallback page title</title><style>p{}</style></head><body>"
        "<nav>Home About</nav><header>Site header</header><script>var x = 1;</script>"
        "<div><p>First <b>bold</b> paragraph.</p><ul><li>one</li><li>two</li></ul></div>"
        "<footer>Copyright</footer></body></html>"
    )
    doc = TrafilaturaExtractor().extract(html_page(html))
    assert doc is not None
    assert doc.text == "First bold paragraph.\n\none\n\ntwo"
    assert doc.title == "Fallback page title"


def test_plain_text_joins_wrapped_lines_and_takes_the_first_line_as_title() -> None:
    body = (
        "Release notes\r\n\r\nThis line is wrapped\r\nin the middle.\r\n\r\n\r\nSecond\tparagraph."
    )
    doc = TrafilaturaExtractor().extract(html_page(body, content_type="text/plain"))
    assert doc is not None
    assert doc.title == "Release notes"
    assert doc.text == "Release notes\n\nThis line is wrapped in the middle.\n\nSecond paragraph."


def test_untyped_html_is_sniffed() -> None:
    html = f"<!DOCTYPE html><html><body><p>{'Sniffed content. ' * 30}</p></body></html>"
    doc = TrafilaturaExtractor().extract(html_page(html, content_type=""))
    assert doc is not None and "Sniffed content." in doc.text


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/pdf", b"%PDF-1.7 binary"),
        ("image/png", b"\x89PNG\r\n"),
        ("application/octet-stream", b"\x00\x01 not html"),
        ("text/html", b""),
        ("text/plain", b"  \n\n "),
    ],
)
def test_pages_without_readable_text_give_none(content_type: str, body: bytes) -> None:
    assert TrafilaturaExtractor().extract(html_page(body, content_type=content_type)) is None


def test_extractor_survives_pickling_for_a_process_pool() -> None:
    extractor = pickle.loads(pickle.dumps(TrafilaturaExtractor(max_html_bytes=1234)))
    assert extractor.max_html_bytes == 1234
    html = f"<html><body><p>{'Pickled. ' * 40}</p></body></html>"
    assert extractor.extract(html_page(html)) is not None


def test_a_page_cannot_give_itself_a_megabyte_title() -> None:
    words = " ".join(f"word{i}" for i in range(50_000))
    html = (
        f"<html><head><title>{words}</title></head><body><p>{'Real text. ' * 40}</p></body></html>"
    )
    doc = TrafilaturaExtractor().extract(html_page(html))
    assert doc is not None
    # The title goes into the prompt, the search results and every name comparison.
    assert len(doc.title) <= 300 and doc.title.startswith("word0 word1 ")
    # A short title is kept whole.
    short = TrafilaturaExtractor().extract(
        html_page(f"<title>Ed Wood</title><body><p>{'Real text. ' * 40}</p></body>")
    )
    assert short is not None and short.title == "Ed Wood"
