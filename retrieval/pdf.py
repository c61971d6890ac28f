"""PDF text extraction with pypdf: fetched bytes -> ``Document`` in the canonical text shape.

The text follows ``Document.text``'s rules (see ``retrieval.extract``): blocks separated by
one blank line, no single newlines, whitespace collapsed, invisible characters removed. A
PDF has no paragraph markup, only positioned lines, so paragraphs are rebuilt per page:
a blank line or a line clearly shorter than the page's usual line width ends a block (the
last line of a paragraph, a heading), a bulleted line starts one, other lines are joined
with a space, and a word hyphenated across a line break is rejoined. Pages are separated
by a blank line.

Untrusted input: every failure (corrupt file, password, unsupported filter, pypdf bug)
gives ``None``, never an exception. Work is bounded by a page cap, a character cap and a
time budget checked between pages; pypdf's own limits bound each stream's decompression,
and the fetcher refuses PDFs over its size cap.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import statistics
import time

from pypdf import PdfReader

from retrieval.text import INVISIBLE, normalize_date
from retrieval.types import Document, Page

log = logging.getLogger("footnote.pdf")

_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_SPACES = re.compile(r"\s+")
_INVISIBLE = INVISIBLE
_PDF_DATE = re.compile(r"^\s*(?:D:)?(\d{4})(\d{2})(\d{2})")
_FILE_NAME = re.compile(r"^[\w.() -]+\.(?:pdf|docx?|odt|rtf|tex|dvi|pptx?|indd|qxd)$", re.I)
_GENERATOR_PREFIXES = ("Microsoft Word - ", "Microsoft PowerPoint - ", "Microsoft Excel - ")
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "title", "document", "slide 1"})
# A line shorter than this share of the page's usual width ends its paragraph.
_SHORT_LINE = 0.7
# Lines this long or longer set the page's usual width; shorter ones are headings and such.
_WIDTH_SAMPLE_MIN = 20
_MAX_TITLE = 300
# A line starting with one of these is a list item: it starts a block of its own.
_BULLETS = frozenset("\u2022\u25e6\u25aa\u2023\u25cf\u25a0\u2043")


def is_pdf(page: Page) -> bool:
    """Whether ``page`` is a PDF: by its type, or a generic type and the ``%PDF-`` signature."""
    mime = page.content_type.split(";", 1)[0].strip().lower()
    if mime in _PDF_TYPES:
        return True
    # The signature may follow up to 1 KB of junk; a declared HTML page is never a PDF.
    return mime in _GENERIC_TYPES and b"%PDF-" in page.body[:1024]


def extract_pdf(
    page: Page,
    *,
    max_pages: int = 50,
    max_chars: int = 2_000_000,
    time_budget_s: float = 2.0,
) -> Document | None:
    """Return the text of a PDF ``page``, or ``None`` when it is not a readable PDF.

    Reads at most ``max_pages`` pages and ``max_chars`` characters, and starts no new page
    after ``time_budget_s`` seconds of CPU time. The title is the ``/Title`` metadata unless
    it is empty or a placeholder (a file name, "Untitled"), else the first line of text;
    ``published`` is ``/CreationDate`` as ``YYYY-MM-DD``. A PDF that needs a password, a
    corrupt one and one without a text layer (a scan) give ``None``.
    """
    if not is_pdf(page):
        return None
    try:
        return _extract(page, max_pages, max_chars, time_budget_s)
    except Exception as exc:
        # pypdf raises many exception types on hostile input; one bad PDF is one lost page.
        log.info("unreadable PDF %s: %r", page.final_url, exc)
        return None


def _extract(page: Page, max_pages: int, max_chars: int, time_budget_s: float) -> Document | None:
    reader = PdfReader(io.BytesIO(page.body), strict=False)
    # Many PDFs are encrypted only to restrict printing or copying, with an empty user
    # password: those open like any other. One that needs a real password is skipped.
    if reader.is_encrypted and not reader.decrypt(""):
        return None
    deadline = time.thread_time() + time_budget_s
    blocks: list[str] = []
    first_line = ""
    chars = 0
    for number, pdf_page in enumerate(reader.pages):
        if number >= max_pages or chars >= max_chars or time.thread_time() > deadline:
            break
        raw = pdf_page.extract_text() or ""
        if not first_line:
            first_line = _first_line(raw)
        for block in page_blocks(raw):
            blocks.append(block)
            chars += len(block) + 2
            if chars >= max_chars:
                break
    text = "\n\n".join(blocks)
    if len(text) > max_chars:
        text = text[:max_chars].rstrip()
    if not text:
        return None
    title, published = _metadata(reader)
    return Document(
        url=page.final_url,
        title=title or first_line,
        text=text,
        published=published,
    )


def page_blocks(raw: str) -> list[str]:
    """Rebuild the text blocks (paragraphs, headings) of one page of extracted PDF text."""
    lines = [_clean(line) for line in raw.splitlines()]
    widths = [len(line) for line in lines if len(line) >= _WIDTH_SAMPLE_MIN]
    usual = statistics.median(widths) if widths else 0.0
    blocks: list[str] = []
    current = ""
    for line in lines:
        if not line:
            if current:
                blocks.append(current)
            current = ""
            continue
        if current and line[0] in _BULLETS:
            blocks.append(current)
            current = ""
        current = _join(current, line)
        if len(line) < _SHORT_LINE * usual:
            blocks.append(current)
            current = ""
    if current:
        blocks.append(current)
    return blocks


def _join(head: str, line: str) -> str:
    if not head:
        return line
    if head.endswith("-") and head[-2:-1].isalpha():
        # Typeset text breaks words far more often than compounds at a line end: "infor-" +
        # "mation" is rejoined (at the price of "well-" + "known"); "Anglo-" + "Saxon" keeps it.
        return head[:-1] + line if line[:1].islower() else head + line
    return head + " " + line


def _clean(line: str) -> str:
    return _SPACES.sub(" ", line.translate(_INVISIBLE)).strip()


def _first_line(raw: str) -> str:
    for line in raw.splitlines():
        line = _clean(line)
        if line:
            return line[:120]
    return ""


def _metadata(reader: PdfReader) -> tuple[str, str | None]:
    """The usable ``/Title`` and the ``/CreationDate`` of ``reader`` (missing parts empty)."""
    try:
        meta = reader.metadata
        if meta is None:
            return "", None
        return _usable_title(meta.title or ""), pdf_date(meta.get("/CreationDate"))
    except Exception:  # broken metadata must not cost the text that was read
        return "", None


def _usable_title(title: str) -> str:
    title = _clean(title)[:_MAX_TITLE]
    for prefix in _GENERATOR_PREFIXES:
        if title.startswith(prefix):
            title = title[len(prefix) :].strip()
    if title.lower() in _PLACEHOLDER_TITLES or _FILE_NAME.match(title):
        return ""
    return title


def pdf_date(value: object) -> str | None:
    """A PDF date (``D:YYYYMMDDHHmmSSOHH'mm'``) or an ISO-like date as ``YYYY-MM-DD``.

    Dates without a month and day are rejected rather than padded: a made-up January 1st
    would mislead recency filters.
    """
    if value is None:
        return None
    text = str(value)
    m = _PDF_DATE.match(text)
    if m is None:
        return normalize_date(text)
    year = int(m[1])
    if not 1000 <= year <= 2999:
        return None
    try:
        return dt.date(year, int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None
