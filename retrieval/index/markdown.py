"""Markdown -> canonical clean text and a title, without a Markdown library.

Not a renderer: it removes what is markup and keeps what is words. Front matter, HTML
tags and comments, link reference definitions, image targets, table rules and emphasis
marks go; link text, image alt text, code, list items and quotes stay, one block each.
The title is the first heading (ATX ``# Title`` or setext ``Title\\n=====``), else a
``title:`` in the front matter.
"""

from __future__ import annotations

import re

from retrieval.extract import normalise_blocks

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.M)
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_RULE = re.compile(r"^\s{0,3}(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)|!\[([^\]]*)\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)|\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1")
_STRIKE = re.compile(r"~~(.+?)~~")
_CODE = re.compile(r"`+([^`]+)`+")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")


def _inline(text: str) -> str:
    text = _IMAGE.sub(lambda m: m.group(1) or m.group(2) or "", text)
    text = _LINK.sub(lambda m: m.group(1) or m.group(2) or "", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _CODE.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    for _ in range(2):  # nested emphasis (***both***, **_mixed_**)
        text = _EMPHASIS.sub(r"\2", text)
    return _ESCAPE.sub(r"\1", text)


def markdown_to_text(source: str) -> tuple[str, str]:
    """Return ``(title, text)`` of a Markdown document; ``title`` is ``""`` when it has none."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    title = ""
    front = _FRONT_MATTER.match(source)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        if found:
            title = found.group(1).strip("'\"")
        source = source[front.end() :]
    source = _COMMENT.sub("", source)
    blocks: list[str] = []
    paragraph: list[str] = []
    heading_title = ""

    def flush() -> None:
        if paragraph:
            blocks.append(_inline(" ".join(paragraph)))
            paragraph.clear()

    lines = source.split("\n")
    fence: str | None = None
    for line in lines:
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
                flush()
            elif line.strip():
                paragraph.append(line.strip())
            continue
        if opened:
            flush()
            fence = opened.group(1)
            continue
        if not line.strip() or (_RULE.match(line) and not paragraph):
            flush()
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            text = _inline(atx.group(2))
            heading_title = heading_title or text
            blocks.append(text)
            continue
        if _SETEXT.match(line) and len(paragraph) == 1:
            text = _inline(paragraph[0])
            paragraph.clear()
            heading_title = heading_title or text
            blocks.append(text)
            continue
        if (_TABLE_RULE.match(line) and "-" in line) or _REF_DEF.match(line):
            continue
        if _LIST.match(line):
            flush()
            paragraph.append(_LIST.sub("", line, count=1).strip())
            continue
        stripped = _QUOTE.sub("", line).strip()
        if "|" in stripped and stripped.startswith("|"):
            flush()
            blocks.append(_inline(" ".join(c.strip() for c in stripped.strip("|").split("|"))))
            continue
        paragraph.append(stripped)
    flush()
    return (heading_title or title).strip(), normalise_blocks(blocks)
