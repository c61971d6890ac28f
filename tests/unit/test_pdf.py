"""PDF extraction on small PDFs written here with pypdf, plus encrypted and corrupt ones."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from retrieval.pdf import extract_pdf, is_pdf, page_blocks, pdf_date
from retrieval.types import Page

URL = "https://example.org/papers/report.pdf"

PARAGRAPH_ONE = (
    "The committee met on several occasions during the spring to review the",
    "evidence collected by the field teams and to agree on a common method for",
    "the analysis of the samples.",
)
PARAGRAPH_TWO = (
    "Results were consistent across all three sites, although the northern site",
    "showed a slightly higher concentration of the trace elements, which the",
    "authors attribute to the geology of the region and to its long history of",
    "mining.",
)


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: Sequence[Sequence[str]],
    *,
    metadata: dict[str, str] | None = None,
    user_password: str | None = None,
) -> bytes:
    """A PDF with one Helvetica text line per entry of each page ("" leaves an empty line)."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})}
        )
    if metadata:
        writer.add_metadata(metadata)
    if user_password is not None:
        # RC4 needs no crypto library; AES would need `cryptography`.
        writer.encrypt(user_password, "owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_page(body: bytes, content_type: str = "application/pdf") -> Page:
    return Page(url=URL, final_url=URL, status=200, content_type=content_type, body=body)


REPORT = make_pdf(
    [
        ["Trace Elements in River Sediments", "", *PARAGRAPH_ONE, *PARAGRAPH_TWO],
        ["A second page about Anglo-", "Saxon methods and infor-", "mation - and more -", "text."],
    ],
    metadata={"/Title": "Trace Elements Report", "/CreationDate": "D:20210314093000+01'00'"},
)


def test_reads_text_title_and_date() -> None:
    doc = extract_pdf(pdf_page(REPORT))
    assert doc is not None
    assert doc.url == URL
    assert doc.title == "Trace Elements Report"
    assert doc.published == "2021-03-14"
    assert doc.text.split("\n\n") == [
        "Trace Elements in River Sediments",
        " ".join(PARAGRAPH_ONE),
        " ".join(PARAGRAPH_TWO),
        # A word broken across lines is rejoined; a capitalised compound keeps its hyphen.
        "A second page about Anglo-Saxon methods and information - and more - text.",
    ]


def test_title_falls_back_to_the_first_line() -> None:
    for metadata in (None, {"/Title": "Microsoft Word - report.docx"}, {"/Title": "Untitled"}):
        doc = extract_pdf(pdf_page(make_pdf([["A Real Heading", "Body."]], metadata=metadata)))
        assert doc is not None
        assert doc.title == "A Real Heading"
        assert doc.published is None
    doc = extract_pdf(pdf_page(make_pdf([["x"]], metadata={"/Title": "Microsoft Word - Budget"})))
    assert doc is not None and doc.title == "Budget"


def test_page_and_character_caps() -> None:
    body = make_pdf([[f"Page {n} text."] for n in range(1, 6)])
    doc = extract_pdf(pdf_page(body), max_pages=2)
    assert doc is not None
    assert doc.text == "Page 1 text.\n\nPage 2 text."
    doc = extract_pdf(pdf_page(body), max_chars=20)
    assert doc is not None
    assert doc.text == "Page 1 text.\n\nPage 2"
    assert extract_pdf(pdf_page(body), time_budget_s=-1) is None


def test_a_pdf_with_a_user_password_is_skipped() -> None:
    assert extract_pdf(pdf_page(make_pdf([PARAGRAPH_ONE], user_password="secret"))) is None


def test_a_pdf_encrypted_only_against_copying_is_read() -> None:
    doc = extract_pdf(pdf_page(make_pdf([PARAGRAPH_ONE], user_password="")))
    assert doc is not None
    assert doc.text == " ".join(PARAGRAPH_ONE)


@pytest.mark.parametrize(
    "body",
    [
        REPORT[: len(REPORT) // 2],
        b"%PDF-1.7\n" + bytes(range(256)) * 40,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>",
        REPORT.replace(b"/Contents", b"/Contentz"),
        make_pdf([[]]),
        b"",
    ],
    ids=["truncated", "garbage", "no-pages", "no-content", "no-text-layer", "empty"],
)
def test_broken_or_empty_pdfs_give_none(body: bytes) -> None:
    assert extract_pdf(pdf_page(body)) is None


def test_only_pdfs_are_read() -> None:
    html = b"<!doctype html><html><body><p>Hello</p></body></html>"
    assert extract_pdf(pdf_page(html, content_type="text/html")) is None
    assert not is_pdf(pdf_page(b"<p>%PDF-1.4</p>", content_type="text/html"))
    assert is_pdf(pdf_page(REPORT, content_type="application/octet-stream"))
    assert extract_pdf(pdf_page(REPORT, content_type="application/octet-stream")) is not None
    assert is_pdf(pdf_page(b"", content_type="Application/PDF; charset=binary"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("D:20210314093000+01'00'", "2021-03-14"),
        ("D:19991231", "1999-12-31"),
        ("20200229", "2020-02-29"),
        ("D:2021", None),
        ("D:202113", None),
        ("D:20211340", None),
        ("D:09990101", None),
        ("2019-05-03T10:00:00Z", "2019-05-03"),
        ("yesterday", None),
        (None, None),
    ],
)
def test_pdf_dates(value: str | None, expected: str | None) -> None:
    assert pdf_date(value) == expected


def test_blocks_follow_the_canonical_text_shape() -> None:
    raw = (
        "Heading\n\nA long line of text that sets the usual width of this page.\nend.\n"
        "\u200bx  y\n\u2022 first item of a list that is long enough\n\u2022 second item"
    )
    assert page_blocks(raw) == [
        "Heading",
        "A long line of text that sets the usual width of this page. end.",
        "x y",
        "\u2022 first item of a list that is long enough",
        "\u2022 second item",
    ]
    assert page_blocks("") == []
