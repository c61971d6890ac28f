"""Small, dependency-free measures: percentiles, token F1, evidence recall, context tokens."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"\w+")

# Context tokens are counted without a tokenizer: ceil(characters / 4), the rule the fake
# upstream and Footnote's own estimates use (tiktoken cannot download its encodings offline).
CHARS_PER_TOKEN = 4


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50(values: Sequence[float]) -> float:
    """Median (NaN for no values)."""
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    """95th percentile (NaN for no values)."""
    return percentile(values, 95)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (NaN for no values)."""
    return sum(values) / len(values) if values else math.nan


def word_tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens, the unit of the extraction F1."""
    return _WORD.findall(text.lower())


def token_f1(predicted: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of ``predicted`` against ``gold`` (SQuAD style)."""
    pred = Counter(word_tokens(predicted))
    ref = Counter(word_tokens(gold))
    overlap = sum((pred & ref).values())
    if not pred or not ref or not overlap:
        return 0.0, 0.0, 0.0
    precision = overlap / sum(pred.values())
    recall = overlap / sum(ref.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def squash(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped."""
    return " ".join(text.split())


def gold_found(gold_sentences: Iterable[str], context: str, max_chars: int | None = None) -> int:
    """How many gold sentences occur verbatim (whitespace-normalised) in ``context``.

    ``max_chars`` looks only at the first ``max_chars`` characters of the context (to score a
    context budget the service did not apply itself).
    """
    haystack = squash(context if max_chars is None else context[:max_chars])
    return sum(1 for sentence in gold_sentences if squash(sentence) in haystack)


def context_tokens(context: str) -> int:
    """Tokens of the context sent upstream: ``ceil(len(context) / 4)``."""
    return math.ceil(len(context) / CHARS_PER_TOKEN)


def critical_path_ms(
    search_ms: float, upstream_ms: float, rounds: Iterable[Sequence[float]], cap_s: float
) -> float:
    """Search + the longest page wait of each fetch round (capped at ``cap_s``) + upstream.

    ``rounds`` holds, per fetch round, how long each page was actually waited for (seconds);
    a pipeline with follow-up searches waits for one round after the other.
    """
    waited = sum(min(max(waits, default=0.0), cap_s) for waits in rounds)
    return search_ms + waited * 1000 + upstream_ms


def fetch_rounds(
    pages: Sequence[tuple[str, float, float, float]],
    search_times: Sequence[float],
    gap_s: float = 0.1,
) -> list[list[float]]:
    """How long each page was waited for, split into fetch rounds.

    A page ``(url, delay, start, end)`` was waited for ``min(delay, end - start)``: its whole
    injected delay if it was delivered, less if the client gave up on it first. Search
    queries arriving within ``gap_s`` of the previous one form one burst, which starts a
    round; a page belongs to the last burst that began before it started.
    """
    starts: list[float] = []
    previous = -math.inf
    for t in sorted(search_times):
        if t - previous > gap_s:
            starts.append(t)
        previous = t
    rounds: list[list[float]] = [[] for _ in starts] or [[]]
    for _, delay, start, end in pages:
        index = 0
        for i, burst in enumerate(starts):
            if start >= burst:
                index = i
        rounds[index].append(min(delay, max(0.0, end - start)))
    return [r for r in rounds if r] or [[]]
