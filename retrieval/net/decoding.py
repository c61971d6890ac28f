"""Header parsing and bounded body decoding for the fetcher.

httpx inflates each network chunk without a size bound (a 1.7 KB brotli body became a
1.07 GB chunk), so the fetcher reads raw bytes and inflates here, asking ``zlib`` for at most
the remaining budget on every call: a decompression bomb costs at most ``limit`` bytes of
output plus one ``zlib`` window, however it is built.
"""

from __future__ import annotations

import codecs
import zlib

from retrieval.errors import FetchError

ACCEPTED_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", "application/pdf"})

# The WHATWG MIME sniffing "HTML" patterns; each must be followed by a space or ">".
_HTML_PREFIXES = tuple(
    p.encode()
    for p in (
        "<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div", "<font",
        "<table", "<a", "<style", "<title", "<b", "<body", "<br", "<p", "<!--",
    )
)  # fmt: skip
_SNIFF_BYTES = 512


def parse_content_type(header: str | None) -> tuple[str, str | None]:
    """Split a ``Content-Type`` value into (lowercased mime without params, charset).

    The charset is returned lowercased and only if Python knows the codec, so that
    ``body.decode(page.charset)`` downstream cannot raise ``LookupError``.
    """
    if not header:
        return "", None
    mime, *params = header.split(";")
    charset: str | None = None
    for param in params:
        name, sep, value = param.partition("=")
        if sep and name.strip().lower() == "charset":
            candidate = value.strip().strip("\"'").strip().lower()
            try:
                codecs.lookup(candidate)
            except LookupError:
                continue
            charset = candidate
            break
    return mime.strip().lower(), charset


def looks_like_html(body: bytes) -> bool:
    """True if the first bytes are an HTML tag, as a browser sniffs an untyped response."""
    head = body[:_SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\n\r\f").lower()
    for prefix in _HTML_PREFIXES:
        if head.startswith(prefix) and head[len(prefix) : len(prefix) + 1] in (b" ", b">"):
            return True
    return False


class BoundedDecoder:
    """Inflates a ``Content-Encoding`` stream chunk by chunk, never past ``limit`` bytes.

    ``feed`` returns the decoded bytes of one raw chunk. Once the output would exceed
    ``limit``, it returns only what fits and sets ``truncated``; later input is ignored.
    Supports ``identity``, ``gzip`` (also ``x-gzip``) and ``deflate`` (zlib-wrapped or raw,
    which servers send interchangeably). Any other coding raises ``FetchError("decoding")``.
    """

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        coding = (content_encoding or "identity").strip().lower()
        if coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError("decoding", f"unsupported Content-Encoding {content_encoding!r}")
        self._coding = coding
        self._remaining = limit
        self._inflater: zlib._Decompress | None = None
        if coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._head = b""
        self.truncated = False

    @property
    def finished(self) -> bool:
        """True once no more output can come: the cap was hit or the stream ended."""
        return self.truncated or (self._inflater is not None and self._inflater.eof)

    def feed(self, chunk: bytes) -> bytes:
        """Decode one raw chunk, returning at most the remaining budget of bytes."""
        if self.finished or not chunk:
            return b""
        if self._coding == "identity":
            return self._take(chunk)
        if self._inflater is None:
            # Deflate flavour detection needs the first two bytes.
            chunk = self._head + chunk
            if len(chunk) < 2:
                self._head = chunk
                return b""
            self._inflater = zlib.decompressobj(_deflate_wbits(chunk))
        try:
            return self._inflate(self._inflater, chunk)
        except zlib.error as exc:
            raise FetchError("decoding", f"corrupt {self._coding} body: {exc}") from exc

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> bytes:
        out: list[bytes] = []
        while not self.truncated and not inflater.eof:
            # Ask for one byte more than fits, to tell "exactly full" from "overflowing".
            want = self._remaining + 1
            piece = inflater.decompress(data, want)
            out.append(self._take(piece))
            data = inflater.unconsumed_tail
            # A short answer with no input left means zlib has nothing more buffered.
            if not data and len(piece) < want:
                break
        return b"".join(out)

    def _take(self, data: bytes) -> bytes:
        if len(data) > self._remaining:
            data = data[: self._remaining]
            self.truncated = True
        self._remaining -= len(data)
        return data


def _deflate_wbits(first: bytes) -> int:
    # "deflate" should mean zlib-wrapped (RFC 9110), but some servers send raw deflate;
    # a zlib header is CM=8 with a 16-bit header that is a multiple of 31.
    if len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
