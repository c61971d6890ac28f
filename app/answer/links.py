"""Output safety for the answer text: links only to fetched sources, no images, nothing invisible.

A page may tell the model to send readers elsewhere ("see https://evil.example") or to embed
a tracking image; an obedient model would pass that on. Whatever the model writes, the
client only ever receives:

- Markdown links and bare URLs that point at a source Footnote fetched (others keep their
  link text and lose the URL; a bare foreign URL is removed);
- no images (``![alt](url)`` is removed whole);
- no invisible characters (zero-width, bidi controls, Unicode tags), the same set removed
  from fetched pages.

``LinkFilter`` does this on streamed text, holding back only what may still become a link:
an open ``[`` (a bounded number of characters), and a last word that may be a URL.
"""

from __future__ import annotations

import re

from retrieval.text import INVISIBLE

_MAX_LINK_TEXT = 300
_MAX_URL = 2048
_LINK = re.compile(rf"(!?)\[([^\[\]\n]{{0,{_MAX_LINK_TEXT}}})\]\(\s*([^()\s]{{1,{_MAX_URL}}})\s*\)")
_LINK_PREFIX = re.compile(
    rf"!?\[[^\[\]\n]{{0,{_MAX_LINK_TEXT}}}(?:\](?:\(\s*[^()\s]{{0,{_MAX_URL}}}\s*)?)?$"
)
_BARE = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>()\[\]\"'`]+", re.I)
_TRAILING = ".,;:!?"
_SCHEMES = ("http://", "https://", "www.")


def _norm(url: str) -> str:
    url = url.strip().rstrip("/")
    return url.split("#", 1)[0].lower()


class LinkFilter:
    """Streams text with foreign links, images and invisible characters removed."""

    def __init__(self, allowed: set[str]) -> None:
        self._allowed = {_norm(u) for u in allowed}
        self._pending = ""

    def feed(self, delta: str) -> str:
        """Take the next piece of text; return what can be sent now."""
        buf = self._pending + delta.translate(INVISIBLE)
        cut = len(buf)
        opened = buf.rfind("[")
        if opened > 0 and buf[opened - 1] == "!":
            opened -= 1
        if opened != -1 and _LINK_PREFIX.match(buf, opened):
            cut = opened
        word_start = max(buf.rfind(c) for c in " \t\n") + 1
        # A complete Markdown link is cleaned whole; only what follows it may be a bare URL.
        word_start = max([word_start, *(m.end() for m in _LINK.finditer(buf))])
        word = buf[word_start:].lower().lstrip("(<\"'")
        if word and (
            any(s.startswith(word) or word.startswith(s) for s in _SCHEMES) or "://" in word
        ):
            cut = min(cut, word_start)
        if buf.endswith("!"):
            cut = min(cut, len(buf) - 1)
        ready, self._pending = buf[:cut], buf[cut:]
        return self._clean(ready)

    def flush(self) -> str:
        """Return what is still held at the end of the text, cleaned."""
        rest, self._pending = self._pending, ""
        return self._clean(rest)

    def _clean(self, text: str) -> str:
        text = _LINK.sub(self._link, text)
        return _BARE.sub(self._bare, text)

    def _ok(self, url: str) -> bool:
        return _norm(url) in self._allowed

    def _link(self, match: re.Match[str]) -> str:
        if match.group(1):
            return ""
        return match.group(0) if self._ok(match.group(3)) else match.group(2)

    def _bare(self, match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        return match.group(0) if self._ok(url) else tail


def clean_links(text: str, allowed: set[str]) -> str:
    """``text`` with foreign links, images and invisible characters removed (see module)."""
    link_filter = LinkFilter(allowed)
    return link_filter.feed(text) + link_filter.flush()
