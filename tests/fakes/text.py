"""Tiny text helpers shared by the fakes: word tokens, content words, sentences, snippets.

Deliberately simple and deterministic: the fakes must behave the same on every machine, and a
test that checks "the answer sentence is verbatim from source 2" must be able to predict what the
fake upstream will pick.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "STOPWORDS",
    "content_words",
    "snippet",
    "split_sentences",
    "words",
]

_WORD = re.compile(r"\w+")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and whitespace, and
# the next sentence starts with an upper-case letter, a digit or an opening quote/bracket.
# No split after an initial ("C. Robert") or a common abbreviation ("Jr. (born"); others still
# split wrongly at times, which only makes the fake upstream quote a shorter verbatim piece.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(\s+)(?=[\"'\u201c\u2018(\[A-Z0-9])")
_LAST_WORD = re.compile(r"(\w+)\.$")
_ABBREVIATION_LIST = """
    jr sr dr mr mrs ms st mt vs no nos inc ltd co corp gen col lt sgt capt rev prof fr op vol
    jan feb mar apr jun jul aug sep sept oct nov dec approx ca est
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

# Function words and question words; content words are what is left.
_STOPWORD_LIST = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom whose why will with would you your yours yourself
    yourselves many much name named called one ones s t
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``) of ``text``, stopwords included (for BM25)."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The distinct lower-cased words of ``text`` that are not stopwords."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, each a verbatim (stripped) substring of ``text``.

    Paragraphs (blank-line separated) never share a sentence.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            before = _LAST_WORD.search(paragraph, max(start, match.start() - 12), match.start() + 1)
            if before and (len(before.group(1)) == 1 or before.group(1).lower() in _ABBREVIATIONS):
                continue
            piece = paragraph[start : match.start(1)].strip()
            if piece:
                sentences.append(piece)
            start = match.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def _overlap(sentence: str, terms: set[str]) -> int:
    return len(content_words(sentence) & terms)


def snippet(text: str, query_terms: Iterable[str], max_chars: int = 200) -> str:
    """A query-biased snippet of about ``max_chars``: from the sentence sharing most query words.

    Like a search engine's result snippet: starts at the best sentence (the first one on ties,
    the start of the text when nothing matches), runs on for ``max_chars`` and is cut at a word
    boundary with an ellipsis.
    """
    terms = {t for t in query_terms if t not in STOPWORDS}
    flat = " ".join(text.split())
    best_start, best_score = 0, 0
    position = 0
    for sentence in split_sentences(text):
        flat_sentence = " ".join(sentence.split())
        found = flat.find(flat_sentence, position)
        if found < 0:
            continue
        position = found + len(flat_sentence)
        score = _overlap(sentence, terms)
        if score > best_score:
            best_start, best_score = found, score
    piece = flat[best_start:]
    if len(piece) <= max_chars:
        return piece
    cut = piece.rfind(" ", 0, max_chars)
    return piece[: cut if cut > max_chars // 2 else max_chars].rstrip(" ,;:") + "\u2026"
