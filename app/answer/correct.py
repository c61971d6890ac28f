"""Checks the model's ``[n]`` markers against the evidence and corrects them, while streaming.

Each sentence of the answer (a claim) is matched against every sentence of every source
shown to the model. A claim's support by a source is the share of the claim's content words
(``retrieval.text.tokenize``) found in the source's best sentence, read together with the
sentence before it (so "He directed it." still names its subject). Then:

- a cited source is **kept** when it supports the claim (``KEEP``) or adds words the other
  kept sources miss (``ADD_SHARE``) while together they support it;
- when none of the cited sources supports the claim, the marker is **replaced** by the source
  that does (``REPLACE``), if one does;
- an uncited sentence that a source supports strongly (``ADD``, at least ``MIN_WORDS``
  content words) gets that source's marker **added** after it;
- otherwise the claim keeps **no** citation: an unsupported sentence cites nothing and the
  basis counts it against the confidence.

Text that needs no correction is passed through byte for byte. While streaming, words go out
as they arrive; only a sentence's marker groups (and what follows them in that sentence) and
trailing whitespace are held until the next sentence begins, so a correction never has to
take back text that was already sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.answer.attribution import claims_of
from app.answer.sources import Source
from retrieval.chunk import split_sentences
from retrieval.text import tokenize

KEEP = 0.5
REPLACE = 0.6
ADD = 0.75
ADD_SHARE = 0.25
MIN_WORDS = 3
# A second source is named beside the best one when it supports the claim nearly as well.
ALSO = 0.9

_GROUP = re.compile(r"[ \t]*(?:\[\d{1,3}\])+")
_PARTIAL = re.compile(r"[ \t]*\[[\d,\s]{0,12}$")


class SupportIndex:
    """Every sentence of every source, tokenized once per request."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self.sentences: dict[int, list[frozenset[str]]] = {}
        for source in sources:
            bag: list[frozenset[str]] = []
            for passage in source.passages:
                previous: frozenset[str] = frozenset()
                for s, e in split_sentences(passage.text):
                    words = frozenset(tokenize(passage.text[s:e]))
                    if words:
                        # A sentence with the one before it: "He directed it." names its
                        # subject in the previous sentence.
                        bag.append(words | previous)
                        previous = words
            self.sentences[source.number] = bag

    def covered(self, words: frozenset[str], number: int) -> frozenset[str]:
        """The claim words that source ``number``'s best-matching sentence contains."""
        best: frozenset[str] = frozenset()
        for sentence in self.sentences.get(number, ()):
            hit = words & sentence
            if len(hit) > len(best):
                best = hit
        return best

    def choose(self, claim_text: str, cited: tuple[int, ...]) -> tuple[int, ...]:
        """The sources the claim should cite (possibly none), given the ones it does cite."""
        words = frozenset(tokenize(claim_text))
        if not words:
            return tuple(n for n in cited if n in self.sentences)
        need = len(words)
        kept: list[int] = []
        union: set[str] = set()
        ranked = sorted(
            ((self.covered(words, n), n) for n in dict.fromkeys(cited) if n in self.sentences),
            key=lambda t: -len(t[0]),
        )
        for hit, number in ranked:
            share = len(hit) / need
            if share >= KEEP or (share >= ADD_SHARE and len(hit - union) / need >= ADD_SHARE):
                kept.append(number)
                union |= hit
        if kept and len(union) / need >= KEEP:
            # Markers stay in the order the model wrote them.
            return tuple(n for n in dict.fromkeys(cited) if n in kept)
        scores = sorted(
            ((len(self.covered(words, n)) / need, n) for n in self.sentences),
            key=lambda t: (-t[0], t[1]),
        )
        if not scores:
            return ()
        top, best = scores[0]
        floor = REPLACE if cited else ADD
        if top < floor or (not cited and need < MIN_WORDS):
            return ()
        also = [n for s, n in scores[1:2] if s >= ALSO * top and s >= floor]
        return (best, *also)


def _rewrite(region: str, index: SupportIndex) -> str:
    """``region`` with every claim's marker groups corrected (unchanged when all are right)."""
    claims = claims_of(region)
    out: list[str] = []
    pos = 0
    for claim in claims:
        chosen = index.choose(claim.text, claim.sources)
        if chosen == claim.sources:
            continue
        span = region[claim.start : claim.end]
        group = "".join(f"[{n}]" for n in chosen)
        first = _GROUP.search(span)
        if first is None:
            # An uncited sentence gains a marker right after it.
            out += [region[pos : claim.end], f" {group}"]
            pos = claim.end
            continue
        lead = first.group(0)[: len(first.group(0)) - len(first.group(0).lstrip(" \t"))]
        rest = _GROUP.sub("", span[first.end() :])
        fixed = span[: first.start()] + (lead + group if group else "") + rest
        out += [region[pos : claim.start], fixed]
        pos = claim.end
    out.append(region[pos:])
    return "".join(out)


def correct_markers(text: str, sources: list[Source], index: SupportIndex | None = None) -> str:
    """The whole answer with its markers checked and corrected (see the module docstring)."""
    fixer = MarkerCorrector(sources, index)
    return fixer.feed(text) + fixer.flush()


class MarkerCorrector:
    """The streaming form of :func:`correct_markers`: feed text, get corrected text back.

    Input is text whose markers already name known sources only (``MarkerFilter``'s output).
    """

    def __init__(self, sources: list[Source], index: SupportIndex | None = None) -> None:
        self._index = index or SupportIndex(sources)
        self._raw = ""
        # ``_raw[:_done]`` is finished and sent (corrected); ``_raw[_done:_sent]`` was sent as is.
        self._done = 0
        self._sent = 0

    def feed(self, piece: str) -> str:
        """Take more answer text; return the text that can be sent now."""
        self._raw += piece
        out: list[str] = []
        claims = claims_of(self._raw[self._done :])
        while len(claims) >= 2:
            end = self._done + claims[1].start
            out.append(self._finish(end))
            claims = claims_of(self._raw[self._done :])
        # The sentence in progress: send its words, hold its markers and trailing spaces.
        tail = self._raw[self._done :]
        hold = len(tail.rstrip())
        for pattern in (_GROUP, _PARTIAL):
            marker = pattern.search(tail)
            if marker is not None:
                hold = min(hold, marker.start())
        hold += self._done
        if hold > self._sent:
            out.append(self._raw[self._sent : hold])
            self._sent = hold
        return "".join(out)

    def flush(self) -> str:
        """Finish the last sentence at the end of the answer."""
        return self._finish(len(self._raw))

    def _finish(self, end: int) -> str:
        region = self._raw[self._done : end]
        fixed = _rewrite(region, self._index)
        already = self._sent - self._done
        if fixed[:already] != region[:already]:
            # A correction would have to change text already sent: keep the model's markers.
            fixed = region
        self._done = self._sent = end
        return fixed[already:]
