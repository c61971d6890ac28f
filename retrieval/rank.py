"""Passage ranking: chunk every document, score passages with BM25, pick a diverse context.

Scoring is Okapi BM25 (``rank_bm25.BM25Okapi``, k1=1.5, b=0.75) over the passages of the
request's documents, with ``retrieval.text.tokenize`` on both sides and Lucene's always
positive idf (``PositiveIdfBM25``). Each passage is indexed with its document's title tokens
added, because passages often name their subject only by pronoun ("She is best known
for ...") and the title is what ties them to the query.

A passage also gets ``neighbour_share`` of its best same-document neighbour's score: the
sentence that completes a strong passage often sits in the next chunk. Scores are
multiplied by ``prose_weight`` (0.35 for a block of table rows or headings, up
to 1.0 for running text), so the paragraph about a subject beats its infobox.

Selection, in order:

1. passages with no positive score, or scoring below ``min_relative_score`` of the best,
   are dropped, and so are exact copies of a better passage (syndicated pages);
2. rounds: the best passage of every document (documents in order of their best score),
   then every document's second best, and so on, at most ``per_source`` per document -
   so one long page cannot crowd out the others;
3. a passage is taken only while the total stays within ``max_chars`` (a context budget
   in characters, ~4 per token, so no tokenizer download is needed) and ``limit``.

The result is sorted best first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from rank_bm25 import BM25Okapi

from retrieval.chunk import chunk
from retrieval.text import tokenize
from retrieval.types import Document, Passage

# Blocks that read as running text: several words, ending like a sentence.
_MIN_PROSE_WORDS = 6
_PROSE_FLOOR = 0.35
_PROSE_ENDINGS = ".!?\"'):;\u201d\u2019"


def prose_weight(text: str) -> float:
    """Down-weight passages that are mostly table rows, headings or link lists.

    The added title tokens make a short infobox or heading block match the query's subject
    as well as the paragraph that actually says something about it; the paragraph must win.
    Returns ``_PROSE_FLOOR`` for no prose up to 1.0 for all prose.
    """
    total = prose = 0
    for block in text.split("\n\n"):
        size = len(block)
        total += size
        stripped = block.strip()
        if (
            not stripped.startswith("|")
            and len(stripped.split()) >= _MIN_PROSE_WORDS
            and stripped[-1:] in _PROSE_ENDINGS
        ):
            prose += size
    if total == 0:
        return _PROSE_FLOOR
    return _PROSE_FLOOR + (1.0 - _PROSE_FLOOR) * prose / total


@lru_cache(maxsize=512)
def _chunked(text: str, title: str, passage_chars: int) -> tuple[tuple[int, int, list[str]], ...]:
    """Passages of a document with their tokens (title tokens added), cached.

    Follow-up rounds rank the same documents again with a few more, and cached pages come
    back in later requests; chunking and tokenizing them once is most of the ranking cost.
    Callers must not mutate the token lists.
    """
    title_tokens = tokenize(title)
    return tuple(
        (start, end, tokenize(text[start:end]) + title_tokens)
        for start, end in chunk(text, max_chars=passage_chars)
    )


def clear_cache() -> None:
    """Forget cached passages and tokens (benchmarks measuring a cold request use this)."""
    _chunked.cache_clear()


class PositiveIdfBM25(BM25Okapi):  # type: ignore[misc]
    """``BM25Okapi`` with idf = ln(1 + (N - n + 0.5) / (n + 0.5)), as Lucene computes it.

    rank_bm25's own idf goes negative for a term in more than half of the passages and is
    then floored at a fraction of the *average* idf, which is itself negative in a small
    corpus. A one-page request, where the title words are in every passage, would then
    score nothing at all.
    """

    def _calc_idf(self, nd: dict[str, int]) -> None:
        n = self.corpus_size
        self.idf = {word: math.log(1.0 + (n - df + 0.5) / (df + 0.5)) for word, df in nd.items()}


class Bm25Ranker:
    """``Ranker`` scoring ~``passage_chars``-character passages with BM25 (see module doc)."""

    def __init__(
        self,
        *,
        per_source: int = 3,
        min_relative_score: float = 0.2,
        max_chars: int = 6000,
        passage_chars: int = 600,
        neighbour_share: float = 0.3,
    ) -> None:
        """Configure selection; ``ValueError`` unless 1 <= passage_chars <= max_chars."""
        if per_source < 1:
            raise ValueError("per_source must be at least 1")
        if not 0.0 <= min_relative_score <= 1.0:
            raise ValueError("min_relative_score must be between 0 and 1")
        if passage_chars < 1 or max_chars < passage_chars:
            raise ValueError("need 1 <= passage_chars <= max_chars")
        self.per_source = per_source
        self.min_relative_score = min_relative_score
        self.max_chars = max_chars
        self.passage_chars = passage_chars
        self.neighbour_share = neighbour_share

    def rank(self, query: str, documents: Sequence[Document], *, limit: int) -> list[Passage]:
        """Return at most ``limit`` passages of ``documents`` for ``query``, best first."""
        query_tokens = tokenize(query)
        if limit < 1 or not query_tokens:
            return []
        candidates = self.score(query_tokens, documents)
        return self.select(candidates, limit=limit)

    def score(self, query_tokens: list[str], documents: Sequence[Document]) -> list[Passage]:
        """Every passage of ``documents`` with its BM25 score for ``query_tokens``."""
        spans: list[tuple[int, int, int]] = []
        corpus: list[list[str]] = []
        for index, doc in enumerate(documents):
            for start, end, tokens in _chunked(doc.text, doc.title, self.passage_chars):
                spans.append((index, start, end))
                corpus.append(tokens)
        if not corpus or not any(corpus):
            return []
        raw = [
            float(score) * prose_weight(documents[i].text[s:e])
            for (i, s, e), score in zip(
                spans, PositiveIdfBM25(corpus).get_scores(query_tokens), strict=True
            )
        ]
        out = []
        for k, (i, s, e) in enumerate(spans):
            # A passage next to a strong one often finishes its thought ("It was founded in
            # 1887."): neighbours in the same document lend it a share of their score.
            near = [raw[j] for j in (k - 1, k + 1) if 0 <= j < len(spans) and spans[j][0] == i]
            score = raw[k] + self.neighbour_share * max(near, default=0.0)
            out.append(Passage(doc=i, start=s, end=e, text=documents[i].text[s:e], score=score))
        return out

    def select(self, candidates: Sequence[Passage], *, limit: int) -> list[Passage]:
        """Apply the cut-off, per-source cap, diversity rounds and budget (see module doc)."""
        ordered = sorted(candidates, key=lambda p: (-p.score, p.doc, p.start))
        if not ordered or ordered[0].score <= 0:
            return []
        floor = ordered[0].score * self.min_relative_score
        by_doc: dict[int, list[Passage]] = {}
        seen_text: set[str] = set()
        for passage in ordered:
            if passage.score <= 0 or passage.score < floor:
                break
            # A copy (syndicated page, repeated boilerplate) loses to its best-scored twin
            # here, before it can take one of its document's slots.
            if passage.text in seen_text:
                continue
            seen_text.add(passage.text)
            per_doc = by_doc.setdefault(passage.doc, [])
            if len(per_doc) < self.per_source:
                per_doc.append(passage)

        chosen: list[Passage] = []
        used = 0
        # dicts keep insertion order, which is the order of each document's best score.
        queues = list(by_doc.values())
        for round_ in range(self.per_source):
            for queue in queues:
                if round_ >= len(queue) or len(chosen) >= limit:
                    continue
                passage = queue[round_]
                if used + len(passage.text) > self.max_chars:
                    continue
                chosen.append(passage)
                used += len(passage.text)
        chosen.sort(key=lambda p: (-p.score, p.doc, p.start))
        return chosen
