"""Maps the answer's ``[n]`` markers to sources, claims to spans, and picks verbatim excerpts.

The model's markers are filtered as the text streams (unknown numbers never reach the
client) and, once the text is complete, each marked sentence becomes a claim whose span
covers the sentence and its markers, with excerpts taken verbatim from the cited page.
"""

from __future__ import annotations

import re

import msgspec

from app.answer.sources import Source
from retrieval.chunk import split_sentences
from retrieval.text import tokenize

# "[3]", "[1, 2]", "[1][2]": a group of source numbers.
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_MARKER_PREFIX = re.compile(r"\[[\d,\s]{0,12}$")
EXCERPT_KEEP = 0.6
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """A sentence of the answer, its span (with markers) and the sources it cites."""

    start: int
    end: int
    text: str
    sources: tuple[int, ...]


_MARKER_WS = re.compile(r"([ \t]*)\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def _rewrite_group(match: re.Match[str], valid: set[int]) -> str:
    numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(2))]
    kept = list(dict.fromkeys(n for n in numbers if n in valid))
    # A dropped group takes its leading space with it, so "word [9]." becomes "word.".
    return match.group(1) + "".join(f"[{n}]" for n in kept) if kept else ""


def clean_markers(text: str, valid: set[int]) -> str:
    """Drop markers naming no known source and images; normalise ``[1, 2]`` to ``[1][2]``."""
    marker_filter = MarkerFilter(valid)
    return marker_filter.feed(text) + marker_filter.flush()


class MarkerFilter:
    """Filters markers and images out of streamed text, holding back only what may change.

    Held back until more text arrives: an unfinished ``[12, 3``, an image not yet closed, a
    complete marker at the end (another may follow), and trailing spaces (a dropped marker
    takes the space before it).
    """

    def __init__(self, valid: set[int]) -> None:
        self._valid = valid
        self._pending = ""

    def feed(self, delta: str) -> str:
        """Take the next piece of upstream text; return what can be sent now."""
        buf = self._pending + delta
        cut = len(buf)
        tail = _MARKER_PREFIX.search(buf)
        if tail:
            cut = tail.start()
        elif buf.endswith("!"):
            cut = len(buf) - 1
        img = buf.rfind("![")
        if img != -1 and ")" not in buf[img:]:
            cut = min(cut, img)
        ends_with_marker = [m for m in _MARKER_WS.finditer(buf, 0, cut) if m.end() == cut]
        if ends_with_marker:
            cut = ends_with_marker[0].start()
        while cut > 0 and buf[cut - 1] in " \t":
            cut -= 1
        ready, self._pending = buf[:cut], buf[cut:]
        return self._clean(ready)

    def flush(self) -> str:
        """Return whatever is still held back at the end of the stream."""
        rest, self._pending = self._pending, ""
        return self._clean(rest)

    def _clean(self, text: str) -> str:
        text = _IMAGE.sub("", text)
        return _MARKER_WS.sub(lambda m: _rewrite_group(m, self._valid), text)


def claims_of(text: str) -> list[Claim]:
    """Split the answer into sentence claims; markers after a full stop belong to it."""
    spans = split_sentences(text)
    if not spans:
        return []
    bounds = [[s, e] for s, e in spans]
    cited: list[list[int]] = [[] for _ in spans]
    for match in _MARKER.finditer(text):
        idx = next((i for i, (s, e) in enumerate(bounds) if s <= match.start() < e), None)
        if idx is None:
            idx = max((i for i, (s, _) in enumerate(bounds) if s <= match.start()), default=0)
        # "It is X. [1] Next." - the marker opens the next span but belongs to the last.
        if idx > 0 and not text[bounds[idx][0] : match.start()].strip(" \t[]0123456789,"):
            idx -= 1
            bounds[idx][1] = max(bounds[idx][1], match.end())
            bounds[idx + 1][0] = max(bounds[idx + 1][0], match.end())
        else:
            bounds[idx][1] = max(bounds[idx][1], match.end())
        cited[idx].extend(int(n) for n in re.split(r"\s*,\s*", match.group(1)))
    claims = []
    for (start, end), numbers in zip(bounds, cited, strict=True):
        while start < end and text[start].isspace():
            start += 1
        if start >= end:
            continue
        plain = _MARKER.sub("", text[start:end]).strip()
        if plain:
            claims.append(
                Claim(
                    start=start,
                    end=end,
                    text=plain,
                    sources=tuple(dict.fromkeys(numbers)),
                )
            )
    return claims


def support(claim_text: str, sentence: str) -> float:
    """Share of the claim's content words found in ``sentence`` (0..1)."""
    claim = set(tokenize(claim_text))
    if not claim:
        return 0.0
    return len(claim & set(tokenize(sentence))) / len(claim)


def best_excerpts(claim_text: str, source: Source, *, most: int = 2) -> list[tuple[str, float]]:
    """The source's sentences that best support the claim, verbatim, with their support."""
    text = source.document.text
    scored: list[tuple[float, int, str]] = []
    for passage in source.passages:
        for s, e in split_sentences(passage.text):
            sentence = passage.text[s:e]
            scored.append((support(claim_text, sentence), passage.start + s, sentence))
    scored.sort(key=lambda t: (-t[0], t[1]))
    if not scored:
        return []
    top = scored[0][0]
    # A second excerpt earns its place only if it supports the claim nearly as well.
    best = [t for t in scored[:most] if t[0] > 0 and t[0] >= EXCERPT_KEEP * top] or scored[:1]
    # Every excerpt is a verbatim slice of the fetched document text.
    out = []
    for score, offset, sentence in sorted(best, key=lambda t: t[1]):
        assert text[offset : offset + len(sentence)] == sentence
        out.append((sentence, score))
    return out
