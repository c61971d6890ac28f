"""One file on disk -> ``FileDocument`` (title, clean text, canonical URL, date).

HTML goes through the service's own extractor (``retrieval.extract``) and keeps its
``<link rel=canonical>``; Markdown through ``retrieval.index.markdown``; plain text is
split into paragraphs at blank lines; PDF through ``retrieval.pdf``. A file with no text
(an empty file, a scanned PDF) reads as ``None``.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from selectolax.lexbor import LexborHTMLParser

from retrieval.extract import TrafilaturaExtractor, decode_bytes, decode_html, normalise_blocks
from retrieval.index.markdown import markdown_to_text
from retrieval.pdf import extract_pdf
from retrieval.types import Page

KINDS: dict[str, str] = {
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".pdf": "pdf",
}
_MAX_TITLE = 200
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_EXTRACTOR = TrafilaturaExtractor()


class FileDocument(msgspec.Struct, frozen=True):
    """What ingestion stores of one file besides its signature."""

    title: str
    text: str
    canonical: str | None = None
    published: str | None = None


def kind_of(path: Path) -> str | None:
    """``html``, ``markdown``, ``text`` or ``pdf`` by file extension, else ``None``."""
    return KINDS.get(path.suffix.lower())


def read_document(body: bytes, kind: str, name: str) -> FileDocument | None:
    """Read a file's bytes as ``kind``; ``name`` (the file name) is the last-resort title."""
    fallback = Path(name).stem.replace("_", " ").replace("-", " ").strip() or name
    if kind == "html":
        return _html(body, fallback)
    if kind == "markdown":
        title, text = markdown_to_text(decode_bytes(body, None))
        return _made(title or fallback, text)
    if kind == "text":
        raw = decode_bytes(body, None).replace("\r\n", "\n").replace("\r", "\n")
        paragraphs = [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(raw)]
        text = normalise_blocks(paragraphs)
        first = next((p for p in paragraphs if p), "")
        # A short first paragraph reads as a heading; a long one gives the file name instead.
        title = first if 0 < len(first) <= 120 else fallback
        return _made(title, text)
    if kind == "pdf":
        doc = extract_pdf(
            Page(url=name, final_url=name, status=200, content_type="application/pdf", body=body)
        )
        return None if doc is None else _made(doc.title or fallback, doc.text, None, doc.published)
    raise ValueError(f"unknown document kind {kind!r}")


def _made(
    title: str, text: str, canonical: str | None = None, published: str | None = None
) -> FileDocument | None:
    if not text.strip():
        return None
    return FileDocument(
        title=" ".join(title.split())[:_MAX_TITLE],
        text=text,
        canonical=canonical,
        published=published,
    )


def _html(body: bytes, fallback: str) -> FileDocument | None:
    page = Page(
        url="file:///document.html",
        final_url="file:///document.html",
        status=200,
        content_type="text/html",
        body=body,
    )
    doc = _EXTRACTOR.extract(page)
    if doc is None:
        return None
    title = doc.title if doc.title and doc.title != "document" else fallback
    return _made(title, doc.text, canonical_link(body), doc.published)


def canonical_link(body: bytes) -> str | None:
    """The ``href`` of the page's ``<link rel="canonical">`` if it is an absolute http(s) URL."""
    # Only the head is parsed again: the link belongs there, and a page can be large.
    end = body.find(b"</head>", 0, 500_000)
    tree = LexborHTMLParser(decode_html(body[: end if end > 0 else 200_000], None))
    for node in tree.css("link[rel]"):
        rels = (node.attributes.get("rel") or "").lower().split()
        href = (node.attributes.get("href") or "").strip()
        if "canonical" in rels and href.lower().startswith(("http://", "https://")):
            return href
    return None
