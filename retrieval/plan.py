"""Query planning without an LLM: a conversation becomes 1-3 (or more) search queries.

Why several queries: a search engine ranks whole pages against the whole question, so a
question that joins two subjects ("Were Scott Derrickson and Ed Wood of the same
nationality?") often finds one subject's page and not the other's. Alongside the question
itself (the natural form) the plan asks a keyword form and one query per named subject,
so each hop of a multi-hop question gets a search of its own.

Follow-ups ("When was he born?") are resolved against earlier user turns: a question that
leans on a pronoun or names no subject borrows the subjects of the turn before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import msgspec

from retrieval.chunk import split_sentences
from retrieval.text import STOPWORDS, tokenize
from retrieval.types import Document, Passage

# Capitalised runs ("Scott Derrickson", "The Exorcism of Emily Rose"), allowing short
# lower-case connectors inside a name, and quoted titles.
_APOS = "'\u2019"  # straight and typographic apostrophes
_NAME_WORD = rf"(?:[A-Z][\w{_APOS}.-]*|\d[\w{_APOS}.-]*)"
_CONNECTOR = r"(?:of|the|de|la|von|van|del|du|da|for|on|a)"
_NAME = re.compile(rf"{_NAME_WORD}(?:\s+(?:{_CONNECTOR}\s+)*{_NAME_WORD})*")
_QUOTED = re.compile('["\u201c]([^"\u201d]{2,80})["\u201d]')
_PRONOUNS = frozenset(
    "he she it they him her them his hers its their theirs this that these those there".split()
)
# Question openers and generic words that start a sentence capitalised without naming anything.
_NOT_NAMES = frozenset(
    """what which who whom whose when where why how is are was were do does did can could
    would should will in on at of the a an and or for to from by with as if name list tell
    give find explain describe compare i you we my our your this these those that aside
    after before during although while since besides apart despite according""".split()
)
# Characters of a search query (engines cut or refuse longer ones).
MAX_QUERY_CHARS = 300
_YEARISH = re.compile(r"^\d[\d\s\u2013\u2014/-]*$")
_WORD = re.compile(rf"[\w{_APOS}-]+")


class QueryPlan(msgspec.Struct, frozen=True):
    """The queries to run, best first; ``question`` is the resolved question."""

    question: str
    queries: tuple[str, ...]


def subjects(text: str) -> list[str]:
    """Named subjects of a sentence: quoted titles, then capitalised runs, in order."""
    found: list[str] = [m.group(1).strip() for m in _QUOTED.finditer(text)]
    for match in _NAME.finditer(text):
        name = match.group(0).strip(f" .-{_APOS}")
        words = name.split()
        # Drop a capitalised question opener ("Were", "Which") glued to the name's front.
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in _NOT_NAMES:
            words = words[:-1]
        if not words:
            continue
        name = " ".join(words)
        # A bare year or range ("1988", "2011-12") names nothing to search for on its own.
        if _YEARISH.match(name):
            continue
        if len(name) > 1 and not any(name.lower() in f.lower() for f in found):
            found.append(name)
    return found


def keywords(text: str) -> str:
    """The question reduced to its content words, in their original order and case."""
    words = [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]
    return " ".join(words)


def _needs_context(question: str) -> bool:
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in STOPWORDS and w not in _NOT_NAMES]
    return any(w in _PRONOUNS for w in words) or len(content) <= 1 or not subjects(question)


def resolve_followup(question: str, earlier: list[str]) -> str:
    """Make a follow-up self-contained by naming the subjects of the previous user turn."""
    if not earlier or not _needs_context(question):
        return question
    for previous in reversed(earlier):
        names = subjects(previous)
        if names:
            missing = [n for n in names if n.lower() not in question.lower()]
            if missing:
                return f"{question} ({', '.join(missing[:3])})"
            return question
    return question


def focus(question: str, limit: int = MAX_QUERY_CHARS) -> str:
    """What to search for in a user turn: all of it, unless it is longer than ``limit``.

    A long turn is usually a pasted text with the question after it: its last sentence that
    ends in "?" is searched when it fits, else the turn's first ``limit`` characters, cut at
    a word. Search engines take a few hundred characters at most (an over-long query is an
    invalid URL, not a search), and ranking a megabyte of words helps no one.
    """
    if len(question) <= limit:
        return question
    end = question.rfind("?")
    if end > 0:
        start = max(question.rfind(mark, 0, end) for mark in ".!?\n") + 1
        asked = question[start : end + 1].strip()
        if 0 < len(asked) <= limit:
            return asked
    cut = question[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def plan_queries(question: str, earlier: list[str] | None = None, *, most: int = 3) -> QueryPlan:
    """Plan up to ``most`` distinct queries for ``question`` (earlier user turns optional).

    Order: the resolved question, then each named subject (when there are two or more, or
    the subject is a title that the question wraps in other words), then the keyword form.
    A long turn is searched by its ``focus``.
    """
    resolved = resolve_followup(" ".join(focus(question).split()), earlier or [])
    queries: list[str] = [resolved]
    names = subjects(resolved)
    if len(names) >= 2:
        queries.extend(names)
    kw = keywords(resolved)
    if kw:
        queries.append(kw)
    if len(names) == 1:
        queries.append(names[0])
    seen: set[str] = set()
    unique: list[str] = []
    for q in queries:
        q = focus(q)  # a follow-up resolved against a long earlier turn stays a query
        key = " ".join(q.lower().split())
        if key and key not in seen:
            seen.add(key)
            unique.append(q)
    return QueryPlan(question=resolved, queries=tuple(unique[: max(1, most)]))


_SLUG_QUALIFIER = re.compile(r"_\([^)]*\)$")
_QUALIFIER = re.compile(r"\s*(?:\([^)]*\)|\s[-\u2013\u2014|:]\s.*)$")
_MONTHS = frozenset(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()
)


def qualified(title: str) -> bool:
    """Whether a title carries a qualifier: "Ed Wood (film)", "Ed Wood - Openpedia"."""
    return bool(_QUALIFIER.search(title))


def names_page(query: str, title: str, url: str = "") -> bool:
    """Whether a page's title or URL slug names exactly the query's subject.

    "Ed Wood", "Ed Wood (film)" and "Ed Wood - Openpedia" name "Ed Wood"; so does "These
    Boots Are Made for Walkin'" for "Boots Are Made for Walkin" (compared as content words,
    so articles, case, accents and apostrophes don't matter). Headlines often wrap the
    subject in other words ("Inside the story of Ed Wood"), so the URL's last path segment
    counts too: ``/2011/08/adriana-trigiani`` names "Adriana Trigiani".
    """
    wanted = tuple(tokenize(query))
    return bool(wanted) and wanted in page_names(title, url)


def page_names(title: str, url: str = "") -> set[tuple[str, ...]]:
    """The subjects a page names (see ``names_page``), as content-word tuples."""
    names = {tuple(tokenize(_QUALIFIER.sub("", title)))}
    slug = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) if url else ""
    slug = _SLUG_QUALIFIER.sub("", slug.rsplit(".", 1)[0] if "." in slug[-6:] else slug)
    if slug:
        names.add(tuple(tokenize(slug.replace("_", " ").replace("-", " "))))
    names.discard(())
    return names


def followup_queries(
    question: str,
    asked: Sequence[str],
    documents: Sequence[Document],
    passages: Sequence[Passage],
    most: int,
    *,
    read_passages: int = 8,
) -> tuple[str, ...]:
    """Subjects the best passages name that nobody has searched or read yet (the next hop).

    A multi-hop question ("the woman who portrayed Corliss Archer in Kiss and Tell") names
    only the first hop; the passages about it name the second ("Shirley Temple"). Each
    candidate scores the passage scores of where it appears, discounted by rank; names
    already in the question, already asked, or whose own page was read are skipped.
    """
    known = set(tokenize(question))
    asked_keys = {" ".join(tokenize(a)) for a in asked}
    # Every page read, once: checked for each candidate name below.
    read = set().union(*(page_names(d.title, d.url) for d in documents))
    scores: dict[str, float] = {}
    for rank, passage in enumerate(passages[:read_passages]):
        weight = passage.score / (1 + rank)
        for start, end in split_sentences(passage.text):
            sentence = passage.text[start:end]
            # The bridge sits in a sentence that talks about the question's own terms.
            overlap = len(known & set(tokenize(sentence))) / max(1, len(known))
            if overlap == 0:
                continue
            for name in subjects(sentence):
                tokens = tokenize(name)
                if not tokens or len(tokens) > 6 or set(tokens) <= known:
                    continue
                if name[0].isdigit():
                    continue
                if len(tokens) == 1 and (len(tokens[0]) < 4 or tokens[0] in _MONTHS):
                    continue
                if " ".join(tokens) in asked_keys:
                    continue
                if tuple(tokens) in read:
                    continue
                # Full names ("Adriana Trigiani") are likelier hops than one word ("Virginia").
                bonus = 1.5 if len(tokens) > 1 else 1.0
                scores[name] = scores.get(name, 0.0) + weight * overlap * bonus
    ranked = sorted(scores, key=lambda n: -scores[n])
    return tuple(ranked[: max(0, most)])


def covers(question: str, passages: Sequence[Passage]) -> bool:
    """Whether ``passages`` together contain every content term of ``question``.

    Follow-up research stops once this holds: a multi-hop question leaves a term of its
    second hop ("the government position held by ...") uncovered until that page is read.
    """
    wanted = set(tokenize(question))
    if not wanted:
        return True
    for passage in passages:
        wanted -= set(tokenize(passage.text))
        if not wanted:
            return True
    return False
