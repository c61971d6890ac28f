"""Main-text extraction: fetched bytes -> ``Document`` (trafilatura, selectolax for the rest).

``Document.text`` is the canonical text every passage, excerpt and offset refers to. Its
shape: one block (paragraph, heading, list item, table row) per paragraph, paragraphs
separated by exactly one blank line (``"\\n\\n"``), runs of whitespace inside a paragraph
collapsed to one space, invisible format characters (zero-width spaces, soft hyphens, BOM)
removed. There are no single newlines in it.

HTML is decoded here (charset from the fetcher, else ``<meta charset>`` in the first 4 KB,
else UTF-8 with replacement) and cut to ``max_html_bytes`` before parsing, since parse time
grows with size and main text sits near the top. The title and date come from a fast
selectolax parse. The main text comes first from the selectolax fast path
(``retrieval.fastextract``: chrome pruned by tag and class/id, a known article container,
accepted only when it reads as an article), which handles ~99% of templated pages in
~0.4 ms; otherwise from ``trafilatura.extract(fast=True,
include_comments=False, include_tables=True)`` with citation lists and navboxes pruned and
its short-page floor lowered (see ``_main_text``); when trafilatura finds nothing, the
``<body>`` text minus script/style/navigation is used instead. On the test corpus this is
faster than trafilatura's defaults on real pages at a higher token F1 (0.947 vs 0.928), and far
cleaner on templated pages (no menus, bylines, share bars or reference lists).
The extractor is stateless and picklable, so it may run in a process pool.
"""

from __future__ import annotations

import codecs
import re
from configparser import ConfigParser
from copy import deepcopy
from urllib.parse import unquote, urlsplit

import trafilatura
from selectolax.lexbor import LexborHTMLParser, LexborNode
from trafilatura.settings import DEFAULT_CONFIG

from retrieval.fastextract import fast_main_text
from retrieval.text import INVISIBLE, normalize_date
from retrieval.types import Document, Page

# Wikipedia-style citation lists and navigation boxes: real pages carry kilobytes of them,
# they never answer a question, and trafilatura keeps them.
DEFAULT_PRUNE_XPATH: tuple[str, ...] = (
    "//ol[contains(@class, 'references')] | //div[contains(@class, 'reflist')]"
    " | //*[contains(@class, 'navbox')]",
)

# Trafilatura's MIN_EXTRACTED_SIZE is 250 characters; the first pass uses 50 (see _main_text).
_DEFAULT_MIN_EXTRACTED = 250
_SHORT_PAGE_CONFIG = deepcopy(DEFAULT_CONFIG)
_SHORT_PAGE_CONFIG["DEFAULT"]["MIN_EXTRACTED_SIZE"] = "50"
_SENTENCE_END = frozenset('.!?"\u201d)')

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I
)
_HTML_SNIFF = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)", re.I | re.S
)
_TABLE_RULE = re.compile(r"^\s*\|(?:\s*:?-+:?\s*\|)+\s*$")
_BLANK_RUN = re.compile(r"\s*\n\s*")
_INVISIBLE = INVISIBLE
_TITLE_SEPARATORS = (" | ", " - ", " \u2013 ", " \u2014 ", " :: ", " \u00b7 ", " \u00bb ")
_DROP_TAGS = "script, style, noscript, template, svg, nav, header, footer, aside, form, iframe"
_BLOCK_TAGS = (
    "p, div, li, ul, ol, h1, h2, h3, h4, h5, h6, tr, table, pre, "
    "blockquote, section, article, dd, dt, br"
)
_DATE_METAS = (
    'meta[property="article:published_time"]',
    'meta[name="article:published_time"]',
    'meta[itemprop="datePublished"]',
    'meta[name="date"]',
    'meta[name="pubdate"]',
    'meta[name="publishdate"]',
    'meta[name="dc.date"]',
    'meta[name="DC.date"]',
    'meta[name="dcterms.date"]',
    'meta[property="og:updated_time"]',
    'meta[property="article:modified_time"]',
)


class TrafilaturaExtractor:
    """``Extractor`` for HTML/XHTML and plain text; other types (PDF included) give ``None``."""

    def __init__(
        self,
        *,
        max_html_bytes: int = 2_000_000,
        prune_xpath: tuple[str, ...] = DEFAULT_PRUNE_XPATH,
        fast: bool = True,
        fast_path: bool = True,
    ) -> None:
        """Cut HTML at ``max_html_bytes``; ``prune_xpath`` nodes never reach the text.

        ``fast_path`` tries the selectolax extractor (``retrieval.fastextract``) first.
        """
        self.max_html_bytes = max_html_bytes
        self.prune_xpath = prune_xpath
        self.fast = fast
        self.fast_path = fast_path

    def extract(self, page: Page) -> Document | None:
        """Return the readable main text of ``page``, or ``None`` when it has none."""
        mime = page.content_type.split(";", 1)[0].strip().lower()
        if mime in _TEXT_TYPES:
            return _extract_plain(page)
        if mime in _HTML_TYPES or (
            mime in ("", "application/octet-stream") and _looks_html(page.body)
        ):
            return self._extract_html(page)
        return None

    def _extract_html(self, page: Page) -> Document | None:
        html = decode_html(page.body[: self.max_html_bytes], page.charset)
        tree = LexborHTMLParser(html)
        title = extract_title(tree)
        published = extract_published(tree)
        blocks = fast_main_text(tree) if self.fast_path else None
        if blocks is not None:
            text = normalise_blocks(blocks)
        else:
            main = self._main_text(html)
            # Markdown table rules ("|---|---|") from trafilatura's tables carry nothing.
            text = normalise_blocks([ln for ln in main.split("\n") if not _TABLE_RULE.match(ln)])
            if not text:
                # The fast path may have pruned the tree: parse again.
                text = _body_text(LexborHTMLParser(html) if self.fast_path else tree)
        if not text:
            return None
        return Document(
            url=page.final_url,
            title=title or _first_line(text) or _title_from_url(page.final_url),
            text=text,
            published=published,
        )

    def _main_text(self, html: str) -> str:
        first = self._trafilatura(html, _SHORT_PAGE_CONFIG)
        if len(first) >= _DEFAULT_MIN_EXTRACTED:
            return first
        # Below trafilatura's own 250-character floor it dumps the whole page ("baseline"),
        # menus and bylines included, which ruins short articles; so a short first result
        # stands unless trafilatura's default pass finds clearly more running prose - then
        # the first pass missed the article (seen on real pages with list-like intros).
        second = self._trafilatura(html, DEFAULT_CONFIG)
        if _prose_chars(second) > 3 * _prose_chars(first) + 200:
            return second
        return first

    def _trafilatura(self, html: str, config: ConfigParser) -> str:
        text = trafilatura.extract(
            html,
            fast=self.fast,
            include_comments=False,
            include_tables=True,
            prune_xpath=list(self.prune_xpath) or None,
            config=config,
        )
        return text or ""


def _prose_chars(text: str) -> int:
    """Characters in lines that read as sentences (40+ characters, closing punctuation)."""
    return sum(
        len(line)
        for line in text.split("\n")
        if len(line) >= 40 and line.rstrip()[-1:] in _SENTENCE_END
    )


def _looks_html(body: bytes) -> bool:
    return _HTML_SNIFF.match(body[:1024].lstrip(codecs.BOM_UTF8)) is not None


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode an HTML body: BOM, then ``charset``, then ``<meta charset>``, then UTF-8."""
    declared = charset
    if declared is None or _codec(declared) is None:
        m = _META_CHARSET.search(body[:4096])
        declared = m.group(1).decode("ascii") if m else None
    return decode_bytes(body, declared)


def decode_bytes(body: bytes, charset: str | None) -> str:
    """Decode ``body`` with a BOM's encoding, else ``charset``, else UTF-8, never failing."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace")
    codec = _codec(charset) if charset else None
    return body.decode(codec or "utf-8", errors="replace")


def _codec(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    # WHATWG: Latin-1 and ASCII labels mean windows-1252; a UTF-16 label on bytes that
    # reached an ASCII-compatible <meta> sniff is really UTF-8.
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    if name.startswith("utf-16") or name.startswith("utf-32"):
        return "utf-8"
    return name


def normalise_blocks(lines: list[str]) -> str:
    """Join text blocks into canonical text: one block per paragraph, ``"\\n\\n"`` between."""
    out = []
    for line in lines:
        block = " ".join(line.translate(_INVISIBLE).split())
        if block:
            out.append(block)
    return "\n\n".join(out)


def extract_title(tree: LexborHTMLParser) -> str:
    """The page title: ``og:title``, else ``<title>`` minus a site suffix, else the first h1."""
    site_name = _meta(tree, 'meta[property="og:site_name"]')
    og = _meta(tree, 'meta[property="og:title"]') or _meta(tree, 'meta[name="og:title"]')
    if og:
        return _strip_site_suffix(og, site_name, guess=False)
    node = tree.css_first("title")
    if node is not None:
        title = _clean(node.text())
        if title:
            return _strip_site_suffix(title, site_name, guess=True)
    h1 = tree.css_first("h1")
    return _clean(h1.text()) if h1 is not None else ""


def _strip_site_suffix(title: str, site_name: str | None, *, guess: bool) -> str:
    if site_name:
        for sep in _TITLE_SEPARATORS:
            if title.endswith(sep + site_name) and len(title) > len(sep + site_name):
                return title[: -len(sep + site_name)].strip()
    if not guess:
        return title
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        # Only a short trailing segment after a real headline is taken for a site name;
        # "Lewis - Clark" or "Q&A | How to cook" keep their text.
        if found and len(tail) <= 40 and len(head) >= 15 and len(head) > len(tail):
            return head.strip()
    return title


def extract_published(tree: LexborHTMLParser) -> str | None:
    """Publication date as ``YYYY-MM-DD`` from meta tags or the first ``<time datetime>``."""
    for selector in _DATE_METAS:
        date = normalize_date(_meta(tree, selector))
        if date:
            return date
    node = tree.css_first("time[datetime]")
    if node is not None:
        return normalize_date(node.attributes.get("datetime"))
    return None


def _meta(tree: LexborHTMLParser, selector: str) -> str | None:
    node = tree.css_first(selector)
    if node is None:
        return None
    return _clean(node.attributes.get("content") or "") or None


def _clean(value: str | None) -> str:
    return " ".join((value or "").translate(_INVISIBLE).split())[:300]


def _body_text(tree: LexborHTMLParser) -> str:
    body: LexborNode | None = tree.body
    if body is None:
        return ""
    for node in body.css(_DROP_TAGS):
        node.decompose()
    for node in body.css(_BLOCK_TAGS):
        node.insert_after("\n")
    return normalise_blocks(_BLANK_RUN.split(body.text(separator="")))


def _extract_plain(page: Page) -> Document | None:
    raw = decode_bytes(page.body, page.charset).replace("\r\n", "\n").replace("\r", "\n")
    # Hard-wrapped lines of one paragraph are joined: a line break would otherwise end a sentence.
    paragraphs = [" ".join(p.split("\n")) for p in re.split(r"\n\s*\n", raw)]
    text = normalise_blocks(paragraphs)
    if not text:
        return None
    return Document(
        url=page.final_url,
        title=_first_line(raw) or _title_from_url(page.final_url),
        text=text,
    )


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        line = _clean(line)
        if line:
            return line[:120]
    return ""


def _title_from_url(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments:
        name = unquote(segments[-1]).rsplit(".", 1)[0]
        name = re.sub(r"[-_]+", " ", name).strip()
        if name:
            return name
    return parts.hostname or url
