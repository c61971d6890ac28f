"""What ``footnote ask`` shows a person: the live stage line, the answer, sources, confidence.

Everything here works on the API's own JSON (the chunks of a streamed completion, or a
completion), so the command line shows exactly what a client of the API would get.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TextIO

import anyio

_MARKER = re.compile(r"\[(\d+)\]")
_CLEAR_LINE = "\r\x1b[2K"


class SseDecoder:
    """Splits a ``text/event-stream`` body into the payloads of its ``data:`` lines."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: bytes) -> list[str]:
        """Add a piece of the body; return the payloads of the events it completed."""
        self._buffer += piece.decode("utf-8").replace("\r\n", "\n")
        *events, self._buffer = self._buffer.split("\n\n")
        payloads = []
        for event in events:
            data = [line[5:].removeprefix(" ") for line in event.split("\n") if line[:5] == "data:"]
            if data:
                payloads.append("\n".join(data))
        return payloads


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _dim(text: str, color: bool) -> str:
    return f"\x1b[2m{text}\x1b[0m" if color else text


def cited_numbers(text: str, meta: dict[str, Any]) -> list[int]:
    """Source numbers the answer cites: its ``[n]`` markers and the URLs of its basis.

    Source ``n`` is ``meta["citations"][n - 1]`` (and ``search_results[n - 1]``), the
    numbering the ``[n]`` markers of the text use.
    """
    urls: list[str] = meta.get("citations") or []
    numbers = {int(m) for m in _MARKER.findall(text) if 1 <= int(m) <= len(urls)}
    position = {url: i for i, url in reversed(list(enumerate(urls, start=1)))}
    for field in meta.get("basis") or []:
        for citation in field.get("citations") or []:
            number = position.get(citation.get("url", ""))
            if number is not None:
                numbers.add(number)
    return sorted(numbers)


def render_sources(text: str, meta: dict[str, Any], *, color: bool = False) -> str:
    """The ``Sources`` section: number, title and URL of every cited source."""
    results: list[dict[str, Any]] = meta.get("search_results") or []
    urls: list[str] = meta.get("citations") or [r.get("url", "") for r in results]
    lines = [_bold("Sources", color)]
    numbers = cited_numbers(text, meta)
    for n in numbers:
        result = results[n - 1] if n <= len(results) else {}
        title = " ".join(str(result.get("title") or urls[n - 1]).split())
        lines.append(f"  [{n}] {title}")
        lines.append("      " + _dim(urls[n - 1], color))
    if not numbers:
        read = len(urls)
        lines.append(f"  none cited ({read} page{'' if read == 1 else 's'} read)")
    elif len(numbers) < len(urls):
        more = len(urls) - len(numbers)
        lines.append(_dim(f"  ({more} more page{'' if more == 1 else 's'} read, not cited)", color))
    return "\n".join(lines)


def render_confidence(meta: dict[str, Any], *, color: bool = False) -> str:
    """The ``Confidence`` section: per basis field, its confidence and reasoning."""
    lines = [_bold("Confidence", color)]
    for field in meta.get("basis") or []:
        reasoning = " ".join(str(field.get("reasoning") or "").split())
        line = f"  {field.get('field', '?')}: {field.get('confidence', '?')}"
        lines.append(f"{line} - {reasoning}" if reasoning else line)
    if len(lines) == 1:
        lines.append("  (no basis returned)")
    return "\n".join(lines)


def render_content(content: str, structured: bool) -> str:
    """The answer text; a structured (JSON) answer is shown indented."""
    if structured:
        try:
            return json.dumps(json.loads(content), indent=2, ensure_ascii=False)
        except ValueError:
            return content
    return content


def render_tail(text: str, meta: dict[str, Any], *, color: bool = False) -> str:
    """Sources and confidence, as printed after the answer."""
    return f"{render_sources(text, meta, color=color)}\n\n{render_confidence(meta, color=color)}"


def describe(stage: str, info: dict[str, int]) -> str:
    """A stage report in words: ``searching 3 queries``, ``reading 10 pages (4/10)``."""
    if stage == "searching":
        n = info.get("queries", 1)
        return f"searching {n} quer{'y' if n == 1 else 'ies'}"
    if stage == "reading":
        n = info.get("pages", 0)
        done = info.get("done", 0)
        words = f"reading {n} page{'' if n == 1 else 's'}"
        return f"{words} ({done}/{n})" if done else words
    return stage


class Progress:
    """A one-line live display of the request's stage on a terminal (stderr)."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._text = "starting"
        self._shown = False
        self._stopped = False
        self._frame = 0
        utf = (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self._frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if utf else "|/-\\"

    def report(self, stage: str, **info: int) -> None:
        """The ``retrieval.progress`` callback: show the new stage at once."""
        self._text = describe(stage, info)
        self.draw()

    def draw(self) -> None:
        """Redraw the line (spinner, stage, seconds so far) unless stopped."""
        if self._stopped:
            return
        frame = self._frames[self._frame % len(self._frames)]
        self._frame += 1
        elapsed = self._clock() - self._start
        self._stream.write(f"{_CLEAR_LINE}{frame} {self._text}  {elapsed:.1f}s")
        self._stream.flush()
        self._shown = True

    def stop(self) -> None:
        """Erase the line and draw no more (the answer is about to be printed)."""
        if self._shown:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
            self._shown = False
        self._stopped = True

    async def animate(self, interval_s: float = 0.1) -> None:
        """Keep the spinner and the seconds moving until cancelled or stopped."""
        while not self._stopped:
            self.draw()
            await anyio.sleep(interval_s)
