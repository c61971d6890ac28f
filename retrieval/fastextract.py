"""A fast main-text path for common article templates, on the selectolax (lexbor) tree.

``fast_main_text`` prunes page chrome (navigation, banners, sidebars, comments, share bars,
reference lists, infoboxes...) by tag and by class/id, picks the article container by a
known selector (``[itemprop=articleBody]``, ``.mw-parser-output``, ``.entry-content``,
``article``, ``main``...), and emits its blocks. It returns ``None`` whenever the result does
not look like an article (no container, too little prose, too little of the page's text,
link-heavy), and the caller then runs trafilatura. The returned text follows
``Document.text``'s contract only after ``normalise_blocks``: it is a list of raw blocks.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Whole subtrees that never hold main text.
_DROP_TAGS = (
    "script, style, noscript, template, svg, nav, header, footer, aside, form, iframe, "
    "button, select, textarea, input, dialog, object, embed, canvas, figure, "
    "[hidden], [aria-hidden=true], [role=navigation], [role=banner], [role=contentinfo], "
    "[role=complementary], [role=dialog], [role=search], "
    '[style*="display:none"], [style*="display: none"], '
    '[style*="visibility:hidden"], [style*="visibility: hidden"]'
)
# Class/id words of chrome; matched against the words of each class and id value.
_CHROME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|sidebar|footer|cookies?|consent|banner|"
    r"share|sharing|sharedaddy|social|related|comments?|comment-list|breadcrumbs?|"
    r"advert|advertisement|ads?|promo|newsletter|subscribe|toc|navbox|reflist|references|"
    r"catlinks|infobox|byline|kicker|meta|tags|widget|popup|modal|noprint|editsection|"
    r"skip|masthead|ticker|author|jump|hatnote|sistersitebox|metadata|printfooter|"
    r"mw-jump-link|read-time|tagline)(?:$|[\s_-])",
    re.I,
)
# Article containers, most specific first. The first one holding enough text wins.
_STRONG_CONTAINERS = (
    "[itemprop=articleBody]",
    ".mw-parser-output",
    ".article-body",
    ".articleBody",
    ".entry-content",
    ".post-content",
    ".post-body",
    ".story-body",
)
_WEAK_CONTAINERS = ("article", "[role=main]", "main", "#content", ".content")
_BLOCKS = "p, li, dd, dt, blockquote, tr, div, section, article, table, ul, ol, br, caption"
_HEADINGS = "h1, h2, h3, h4, h5, h6"
_CELLS = "td, th"
_HEADING_MARK = "\x02"
# Block boundaries; source newlines inside a paragraph are only whitespace.
_BREAK = "\x03"
_SENTENCE_END = frozenset('.!?:;"\u201d)')


def _chrome_nodes(root: LexborNode) -> list[LexborNode]:
    found = []
    for node in root.css("[class], [id]"):
        attrs = node.attributes
        ident = attrs.get("id") or ""
        # Long ids are slugs of section headings ("sharing-with-a-single-developer").
        if _CHROME.search(attrs.get("class") or "") or (
            ident.count("-") + ident.count("_") <= 2 and _CHROME.search(ident)
        ):
            found.append(node)
    return found


def _text_len(node: LexborNode) -> int:
    return len("".join(node.text(separator="").split()))


def _prune(root: LexborNode) -> None:
    for node in root.css(_DROP_TAGS):
        node.remove()
    for node in _chrome_nodes(root):
        # A node may sit inside one already removed: remove() only detaches, which is safe.
        node.remove()
    # Link lists: "see also", related links, tag clouds.
    for node in root.css("ul, ol, dl, table"):
        total = _text_len(node)
        if total == 0:
            node.remove()
            continue
        links = sum(_text_len(a) for a in node.css("a"))
        if links > 0.6 * total:
            node.remove()


def _container(body: LexborNode) -> tuple[LexborNode, bool] | None:
    for selector in _STRONG_CONTAINERS:
        node = body.css_first(selector)
        if node is not None and _text_len(node) >= 40:
            return node, True
    for selector in _WEAK_CONTAINERS:
        node = body.css_first(selector)
        if node is not None and _text_len(node) >= 40:
            return node, False
    return None


def _blocks(container: LexborNode) -> list[str]:
    for node in container.css("pre"):
        # Preformatted lines (code, shell sessions) stay separate blocks.
        node.replace_with(_BREAK + _BREAK.join(node.text(separator="").split("\n")) + _BREAK)
    for node in container.css(_HEADINGS):
        node.insert_before(_BREAK + _HEADING_MARK)
        node.insert_after(_BREAK)
    for node in container.css(_BLOCKS):
        node.insert_before(_BREAK)
        node.insert_after(_BREAK)
    for node in container.css(_CELLS):
        node.insert_after(" ")
    lines = [" ".join(ln.split()) for ln in container.text(separator="").split(_BREAK)]
    lines = [ln for ln in lines if ln and ln != _HEADING_MARK]
    # A heading with no text after it before the next heading heads nothing we kept.
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(_HEADING_MARK):
            nxt = lines[i + 1] if i + 1 < len(lines) else _HEADING_MARK
            if nxt.startswith(_HEADING_MARK):
                continue
            line = line[1:].strip()
        out.append(line)
    return out


def _prose_chars(blocks: list[str]) -> int:
    return sum(len(b) for b in blocks if len(b) >= 40 and b[-1] in _SENTENCE_END)


def fast_main_text(tree: LexborHTMLParser) -> list[str] | None:
    """Main-text blocks of an article page, or ``None`` when the page needs trafilatura.

    ``tree`` is modified (chrome removed); parse again for anything else.
    """
    body = tree.body
    if body is None:
        return None
    _prune(body)
    found = _container(body)
    if found is None:
        return None
    container, strong = found
    inside = _text_len(container)
    outside = _text_len(body) - inside
    blocks = _blocks(container)
    prose = _prose_chars(blocks)
    chars = sum(len(b) for b in blocks)
    if not blocks or chars == 0:
        return None
    if strong:
        ok = prose >= 0.5 * chars and inside >= 0.5 * (inside + outside)
    else:
        ok = prose >= 500 and prose >= 0.6 * chars and inside >= 0.7 * (inside + outside)
    return blocks if ok else None
