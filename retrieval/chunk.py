"""Sentence splitting and passage chunking, by character offsets into the canonical text.

Every function here returns ``(start, end)`` spans such that ``text[start:end]`` is the
sentence or passage with no surrounding whitespace, so excerpts and citations can always be
traced back to ``Document.text``.
"""

from __future__ import annotations

import re


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Period-terminated words that do not end a sentence whatever follows.
_ABBREVIATIONS = _wordset(
    """
    mr mrs ms messrs mme mlle dr prof st jr sr mt ft gen col lt sgt capt cpt maj cmdr adm
    rev hon gov sen rep pres supt insp dept univ assn bros inc ltd co corp vs cf al approx
    ca est
    """
)
# Abbreviations that only precede a number ("No. 5", "Jan. 14", "pp. 12"); before a
# capitalised word they may well end the sentence ("in May. The").
_NUMBER_ABBREVIATIONS = _wordset(
    """
    no nos vol vols pp p fig figs art sec ch op ed eds jan feb mar apr jun jul aug sep sept oct
    nov dec
    """
)
_OPENERS = frozenset("\"'\u201c\u2018\u00ab([")
_CLOSERS = "\"'\u201d\u2019\u00bb)]"
_TERMINATOR = re.compile("[.!?\u2026]+(?:[" + re.escape(_CLOSERS) + r"]|\[\d{1,3}\])*(?=\s)")
_WORD_BEFORE = re.compile("[\\w.'\u2019-]*$")
_LINE = re.compile(r"[^\n]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentence spans; a line break always ends a sentence.

    A ``.``, ``!``, ``?`` or ``…`` (plus any closing quotes, brackets or ``[n]`` citation
    marks) ends a sentence when whitespace and then an upper-case letter, digit or opening
    quote/bracket follow. Periods after titles and common abbreviations (``Dr.``, ``St.``,
    ``U.S.``, ``e.g.``), after single-letter initials (``J. R. R. Tolkien``) and before a
    number after ``No.``/``Jan.``/``pp.`` do not end one; decimals never do (no space).
    """
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        start = line.start()
        segment_end = line.end()
        for m in _TERMINATOR.finditer(text, line.start(), segment_end):
            nxt = _next_visible(text, m.end(), segment_end)
            if nxt is None or not _ends_sentence(text, m, nxt):
                continue
            _add_stripped(text, start, m.end(), spans)
            start = m.end()
        _add_stripped(text, start, segment_end, spans)
    return spans


def _next_visible(text: str, pos: int, end: int) -> str | None:
    while pos < end and text[pos].isspace():
        pos += 1
    return text[pos] if pos < end else None


def _ends_sentence(text: str, m: re.Match[str], nxt: str) -> bool:
    if not (nxt.isupper() or nxt.isdigit() or nxt in _OPENERS):
        return False
    marks = m.group().rstrip(_CLOSERS + "0123456789[")
    if marks != ".":
        return True  # "!", "?", "…" and "..." end a sentence before a capital
    word = _WORD_BEFORE.search(text, max(0, m.start() - 40), m.start())
    token = word.group() if word else ""
    last = token.rsplit("-", 1)[-1].lstrip("'\u2019(\"")
    if not last:
        return True
    if "." in last:
        return False  # "U.S.", "e.g.", "Ph.D." - dotted abbreviations keep their sentence
    if len(last) == 1 and last.isalpha() and last.isupper():
        return False  # an initial: "J. R. R. Tolkien", "D. M. Grant"
    lower = last.lower()
    if lower in _ABBREVIATIONS:
        return False
    return not (lower in _NUMBER_ABBREVIATIONS and nxt.isdigit())


def _add_stripped(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of the blank-line separated paragraphs of ``text``, whitespace stripped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        _add_stripped(text, start, m.start(), spans)
        start = m.end()
    _add_stripped(text, start, len(text), spans)
    return spans


def chunk(
    text: str, *, max_chars: int = 600, min_chars: int | None = None
) -> list[tuple[int, int]]:
    """Cut ``text`` into passages of at most ``max_chars`` characters, on sentence boundaries.

    A paragraph that fits is one passage. A longer one is cut between sentences into pieces
    of balanced length (a single sentence longer than ``max_chars`` is cut at a space).
    A passage crosses a paragraph break only to absorb short blocks: while it is still
    shorter than ``min_chars`` (default ``max_chars // 4``; a heading joins the paragraph
    after it), or to pack a run of short blocks such as list items or table rows.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    floor = max_chars // 4 if min_chars is None else min_chars
    pieces: list[tuple[int, int]] = []
    for start, end in paragraphs(text):
        if end - start <= max_chars:
            pieces.append((start, end))
        else:
            pieces.extend(_split_long(text, start, end, max_chars))

    passages: list[tuple[int, int]] = []
    last_piece_len = 0
    for start, end in pieces:
        if passages:
            cur_start, cur_end = passages[-1]
            fits = end - cur_start <= max_chars
            short_run = last_piece_len < floor and end - start < floor
            if fits and (cur_end - cur_start < floor or short_run):
                passages[-1] = (cur_start, end)
                last_piece_len = end - start
                continue
        passages.append((start, end))
        last_piece_len = end - start
    return passages


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    sentences: list[tuple[int, int]] = []
    for s, e in split_sentences(text[start:end]):
        sentences.extend(_hard_split(text, start + s, start + e, max_chars))
    count = -(-(end - start) // max_chars)
    target = (end - start) // count
    pieces: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for s, e in sentences:
        if cur is not None and (e - cur[0] > max_chars or cur[1] - cur[0] >= target):
            pieces.append(cur)
            cur = None
        cur = (s, e) if cur is None else (cur[0], e)
    if cur is not None:
        pieces.append(cur)
    return pieces


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut <= start:
            cut = start + max_chars
        _add_stripped(text, start, cut, out)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    _add_stripped(text, start, end, out)
    return out
