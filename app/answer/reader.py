"""Reads the sources for the sentences that answer a question, one hop at a time.

The extractive writer's reading (``extractive.py``), and the reading any careful writer does:

1. **The best sentence.** Every prose sentence of the passages scores the question's content
   words it holds, weighted by their rarity among the sources' sentences (idf: a name counts
   more than "year"), with the words of its page's own name counted in ("It was released in
   2000." on the page "Shut Up, Make Love"). It earns a bonus (``NAMED``) when its page is
   one the question names, and another (``TYPED``) when it holds the kind of answer asked
   for: a number for "how many", a date for "when", a name the question does not already
   use for "who".
2. **Comparisons.** "Who is older, Annie Morton or Terry Richardson?" compares two subjects;
   each one's own page is read, whatever the first sentence already says about it.
3. **The next hop.** A multi-hop question ("the woman who portrayed Corliss Archer in Kiss
   and Tell") needs a second page. A page may join only when it is *connected* to what was
   read: the question names it, a chosen sentence or page names it, or it names the chosen
   page. Among those, the sentence that adds the most question weight, plus the strength of
   its connection, must pay for the extra citation (``COST``): a page that only repeats
   what is already covered, or that nothing links to, is not cited. Page names come from
   the title and the URL's last path segment (``retrieval.plan.page_names``) and from the
   run of words the two share, so "A closer look at Peter Fleming" at ``.../peter-fleming-
   tennis`` names "Peter Fleming".

At most ``MOST`` sentences on distinct pages are chosen: citation precision (every page cited
should earn its place) is worth more than a third, weaker page.

Measured on the simulated web's dev questions (tier ``base``, ``python -m bench basis
--questions 600``), against the previous writer (the three best-matching sentences): HotpotQA
citation precision 0.71 -> 0.904 (311/344) and gold-page recall 0.71 -> 0.78 (311/400, of
0.93 within reach: the gold pages among the sources read); SQuAD precision 0.66 -> 0.85. The
weights below sit on a flat part of that curve (+-0.1 moves either figure by under 0.02).
What is left is mostly a second page that nothing links by name (an abbreviation, a
paraphrase): finding it needs a reader that understands the text, not one that matches it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlsplit

import msgspec

from app.answer.sources import Source
from app.answer.sufficiency import answer_type_met
from retrieval.chunk import split_sentences
from retrieval.plan import page_names, qualified, subjects
from retrieval.text import tokenize

# Bonus of a sentence on a page the question names, and of one holding the asked-for kind.
NAMED = 0.15
TYPED = 0.1
# Sources are numbered by their best passage's rank: a small prior for the better-ranked one
# (dev HotpotQA precision 0.897 -> 0.901, recall 0.765 -> 0.772; flat from 0.005 to 0.06).
RANK = 0.02
# What a further page must bring (question weight added + connection) to be cited.
COST = 0.2
# Connection strengths (see ``_connection``); a compared subject's page always joins.
COMPARED = 1.0
NAMED_PAGE = 0.2
IN_SENTENCE = 0.3
IN_PAGE = 0.15
NAMES_US = -0.1
NAMED_AND_LINKED = 0.0
MOST = 2
# Words of a title or URL slug compared for a page's names.
_NAME_WORDS = 16
# Characters and distinct content words of the question that are read.
_QUESTION_CHARS = 2000
_MOST_TERMS = 64
# Sentences in all (further ones come from pages already chosen), and how well a further
# sentence must score against the best.
SENTENCES = 3
KEEP = 0.6
_MIN_WORDS = 4

_ASKS_NAME = re.compile(r"\b(?:who|whom|whose)\b", re.I)
# A capitalised word that does not start a sentence: a name, for "who" questions.
_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'-]+")
# "X or Y", "X and Y": the conjunction between two compared subjects.
_CONJUNCTION = re.compile(r"\s+(?:or|and|vs\.?|versus)\s+")
# Characters either side of a conjunction searched for the compared names, and how many
# compared subjects are looked for at most.
_SIDE_CHARS = 120
_MOST_SIDES = 6
# A name: capitalised words, with short lower-case connectors inside ("Letters to Cleo").
_NAME_WORD = r"[A-Z0-9\"'\u201c][\w'\u2019.&!/-]*"
_CONNECTOR = r"(?:to|of|the|de|la|for|on|a|an|in|von|van|du|da|del|y)"
_NAME_RUN = rf"{_NAME_WORD}(?:\s+(?:{_CONNECTOR}\s+)*{_NAME_WORD})*"
_LAST_NAME = re.compile(rf"{_NAME_RUN}$")
_FIRST_NAME = re.compile(rf"(?:the\s+)?{_NAME_RUN}")
_LETTER_CAPITAL = re.compile(r"[A-Z]")


class Pick(msgspec.Struct, frozen=True):
    """A chosen sentence: its source number, offset in the document text and text."""

    source: int
    offset: int
    text: str


class _Sentence(msgspec.Struct, frozen=True):
    source: int
    offset: int
    text: str
    words: frozenset[str]  # its own content words
    read: frozenset[str]  # ... plus its page's name words: what a reader takes from it


Names = set[tuple[str, ...]]


def subject_names(title: str, url: str) -> Names:
    """The names a page goes by: ``page_names`` plus the run of words title and slug share."""
    names = page_names(title, url)
    slug = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) if url else ""
    # A page writes its own title and URL: only their first words are compared, so that a
    # hostile megabyte title costs no more than a real one.
    shared = _common_run(
        tuple(tokenize(title))[:_NAME_WORDS],
        tuple(tokenize(slug.replace("_", " ").replace("-", " ")))[:_NAME_WORDS],
    )
    if shared:
        names.add(shared)
    if not slug:
        # No URL to tell the page's subject: a headline names it among other words ("A closer
        # look at Peter Fleming"), so its multi-word capitalised runs count as names too.
        # (With a slug they only add namesakes: measured, precision 0.90 -> 0.87.)
        for subject in subjects(title):
            words = tuple(tokenize(subject))
            if len(words) > 1:
                names.add(words)
    return names


def _common_run(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """The longest run of words ``a`` and ``b`` share (dynamic programming, O(len a * len b))."""
    best_end, best_len = 0, 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best_len:
                    best_end, best_len = i, current[j]
        previous = current
    return a[best_end - best_len : best_end]


def names_in(words: frozenset[str], names: Names) -> bool:
    """Whether ``words`` hold one of ``names`` (a one-word name needs 4+ letters)."""
    return any(n and set(n) <= words and (len(n) > 1 or len(n[0]) >= 4) for n in names)


def compared_sides(question: str) -> list[str]:
    """The subjects a comparison question sets side by side ("X or Y", "X and Y").

    Each side is the name next to the conjunction ("What occupation do Chris Menges" ->
    "Chris Menges", "Eatza Pizza restaurants" -> "Eatza Pizza"); numbers alone ("between
    1980 and 1990") are not subjects. Only ``_SIDE_CHARS`` either side of each conjunction
    are read, so the work grows linearly with the question, however long.
    """
    out: list[str] = []
    for conjunction in _CONJUNCTION.finditer(question):
        before = question[max(0, conjunction.start() - _SIDE_CHARS) : conjunction.start()]
        after = question[conjunction.end() : conjunction.end() + _SIDE_CHARS]
        left = _LAST_NAME.search(before)
        right = _FIRST_NAME.match(after)
        sides = [m.group(0) for m in (left, right) if m is not None]
        if len(sides) == 2 and all(_LETTER_CAPITAL.search(side) for side in sides):
            out += [side for side in sides if side not in out]
        if len(out) >= _MOST_SIDES:
            break
    return out[:_MOST_SIDES]


def _best_page(
    sources: Sequence[Source],
    names: dict[int, Names],
    score: Callable[[set[str]], int | None],
) -> int | None:
    """The source whose best name scores highest (None: skip); ties go to a plain title
    ("Ed Wood" over "Ed Wood (film)"), then to the better-ranked source."""
    best: tuple[tuple[int, bool, int], int] | None = None
    for source in sources:
        plain = not qualified(source.document.title)
        for name in names[source.number]:
            value = score(set(name))
            if value is None:
                continue
            key = (value, plain, -source.number)
            if best is None or key > best[0]:
                best = (key, source.number)
    return best[1] if best else None


def _side_page(side: str, sources: Sequence[Source], names: dict[int, Names]) -> int | None:
    """The source that is the side's own page: most of its words, fewest others."""
    want = set(tokenize(side))

    def score(name: set[str]) -> int | None:
        hit = name & want
        value = len(hit) - len(name - want)
        return value if hit and value >= 1 and 2 * len(hit) >= len(want) else None

    return _best_page(sources, names, score)


def _is_prose(text: str) -> bool:
    return len(text.split()) >= _MIN_WORDS and "\n" not in text and not text.startswith("|")


def _sentences(sources: Sequence[Source], names: dict[int, Names]) -> list[_Sentence]:
    out: list[_Sentence] = []
    for source in sources:
        own = frozenset(word for name in names[source.number] for word in name)
        for passage in sorted(source.passages, key=lambda p: p.start):
            for s, e in split_sentences(passage.text):
                text = passage.text[s:e]
                words = frozenset(tokenize(text))
                if words and _is_prose(text):
                    out.append(
                        _Sentence(source.number, passage.start + s, text, words, words | own)
                    )
    return out


def _typed(question: str, text: str, asked: frozenset[str], asks_name: bool) -> bool:
    """Whether ``text`` holds the kind of answer the question asks for."""
    if not answer_type_met(question, (text,)):
        return False
    if asks_name:
        return any(not set(tokenize(m.group(0))) <= asked for m in _CAPITAL.finditer(text))
    return True


def read(question: str, sources: Sequence[Source], *, most: int = MOST) -> list[Pick]:
    """The sentences that answer ``question``: at most ``most`` pages and ``SENTENCES`` in all.

    Pages come in the order they were chosen (the best-answering first), each page's
    sentences in reading order; every pick is a verbatim slice of its document's text.
    """
    # A question has a few dozen content words; a pasted document is read as its beginning,
    # so that the work stays bounded whatever a client sends.
    question = question[:_QUESTION_CHARS]
    terms = list(dict.fromkeys(tokenize(question)))[:_MOST_TERMS]
    names = {s.number: subject_names(s.document.title, s.document.url) for s in sources}
    sentences = _sentences(sources, names)
    if not terms or not sentences:
        return []
    n = len(sentences)
    weight = {
        t: math.log(1 + (n + 1) / (sum(t in s.words for s in sentences) + 0.5)) for t in terms
    }
    total = sum(weight.values())

    def cover(words: frozenset[str] | set[str]) -> float:
        return sum(weight[t] for t in terms if t in words) / total

    asked = frozenset(terms)
    named = {k for k, ns in names.items() if any(set(nm) <= asked for nm in ns)}
    anchors = _anchors(question, sources, names)
    sides = {_side_page(side, sources, names) for side in compared_sides(question)}
    compare = {k for k in sides if k is not None}
    if len(compare) < 2:
        compare = set()
    asks_name = bool(_ASKS_NAME.search(question))
    typed = {s: _typed(question, s.text, asked, asks_name) for s in sentences}
    by_page: dict[int, list[_Sentence]] = {}
    for sentence in sentences:
        by_page.setdefault(sentence.source, []).append(sentence)

    def first_score(s: _Sentence) -> tuple[float, int, int]:
        score = cover(s.read) + NAMED * (s.source in anchors) + TYPED * typed[s]
        return (score - RANK * s.source, -s.source, -s.offset)

    ranked = sorted(sentences, key=first_score, reverse=True)
    chosen = [ranked[0]]
    covered = set(chosen[0].read)
    while len(chosen) < most:
        pages = {s.source for s in chosen}
        base = cover(covered)
        have_type = any(typed[s] for s in chosen)
        best: tuple[float, _Sentence] | None = None
        for page, members in by_page.items():
            if page in pages:
                continue
            link = _connection(page, chosen, by_page, names, named, compare)
            if link is None:
                continue
            for s in members:
                gain = cover(covered | s.read) - base
                value = gain + link + TYPED * (typed[s] and not have_type) - COST
                if best is None or value > best[0]:
                    best = (value, s)
        if best is None or best[0] <= 0:
            break
        chosen.append(best[1])
        covered |= best[1].read
    # A page already cited may give more sentences, up to ``SENTENCES``, at no cost to
    # precision, when they score nearly as well as the best one (the answer often sits beside
    # the sentence that matches the question best): dev answers (base) holding the gold
    # answer 67% -> 70%.
    order = [s.source for s in chosen]
    floor = KEEP * first_score(ranked[0])[0]
    extras = [
        s for s in ranked if s.source in order and s not in chosen and first_score(s)[0] >= floor
    ][: max(0, SENTENCES - len(chosen))]
    # Pages in the order they were chosen, each page's sentences in reading order.
    picked = sorted([*chosen, *extras], key=lambda s: (order.index(s.source), s.offset))
    return [Pick(s.source, s.offset, s.text) for s in picked]


def cited(picks: Sequence[Pick]) -> str:
    """The picks as answer text: each sentence followed by its source's ``[n]``."""
    return " ".join(f"{pick.text} [{pick.source}]" for pick in picks)


def _anchors(question: str, sources: Sequence[Source], names: dict[int, Names]) -> set[int]:
    """Pages that are a subject's own page: for each named subject, the best-matching one."""
    asked = set(tokenize(question))
    out: set[int] = set()
    for subject in subjects(question):
        want = set(tokenize(subject))

        def score(name: set[str], want: set[str] = want) -> int | None:
            return len(name & asked) - len(name - asked) if want <= name else None

        page = _best_page(sources, names, score) if want else None
        if page is not None:
            out.add(page)
    return out


def _connection(
    page: int,
    chosen: list[_Sentence],
    by_page: dict[int, list[_Sentence]],
    names: dict[int, Names],
    named: set[int],
    compare: set[int],
) -> float | None:
    """How strongly ``page`` connects to the chosen sentences (None: not at all).

    A page the question names, that the chosen pages do not already mention, is the other
    half of the question; one they mention is usually a namesake or context already read.
    """
    if page in compare:
        return COMPARED
    ours = {s.source for s in chosen}
    in_sentence = any(names_in(s.words, names[page]) for s in chosen)
    in_page = in_sentence or any(names_in(s.words, names[page]) for o in ours for s in by_page[o])
    if page in named:
        return NAMED_AND_LINKED if in_page else NAMED_PAGE
    if in_sentence:
        return IN_SENTENCE
    if in_page:
        return IN_PAGE
    if any(names_in(s.words, names[o]) for o in ours for s in by_page[page]):
        return NAMES_US
    return None
