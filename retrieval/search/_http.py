"""Shared plumbing of the key-based JSON search APIs (Brave, Tavily, Exa).

``ApiSearchProvider`` holds what the three have in common: the API key, an ``httpx`` client
that ignores proxy settings from the environment and never follows redirects (a redirect
would carry the key to another host), one overall deadline per call (httpx timeouts are per
network operation, so a slow drip would never trip them), a cap on the body size, and the
one mapping of HTTP outcomes to ``SearchUnavailable``/``SearchRateLimited``. Each provider
module only builds its request and maps its JSON results with ``collect_hits``.

The API key is sent in a header and never appears in an error message.
"""

from __future__ import annotations

import email.utils
import html
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec

from retrieval.errors import SearchRateLimited, SearchUnavailable
from retrieval.types import SearchHit

MAX_BODY_BYTES = 5_000_000
# A Retry-After beyond this is treated as "a long while"; a monthly quota reset (Brave says
# ~1.4 million seconds) should not pin a provider down for weeks in a long-running process.
MAX_RETRY_AFTER_S = 3600.0
MAX_SNIPPET_CHARS = 600

# Only tag-shaped text: a snippet saying "a < b and c > d" must survive.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,300})?/?>")


class ApiSearchProvider:
    """Base of the key-based JSON search providers; subclasses implement ``_call``.

    ``search`` returns ``[]`` for a blank query or ``limit < 1`` without calling the API,
    asks for at most ``max_results`` (the API's own cap) and never returns more than
    ``limit`` hits.
    """

    name: str = ""
    label: str = ""
    max_results: int = 20
    default_base_url: str = ""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """Prepare a provider for ``api_key`` at ``base_url`` (default: the official API).

        ``client`` is borrowed (not closed) if given.
        """
        base_url = base_url or self.default_base_url
        if not api_key or not api_key.strip():
            raise ValueError(f"{self.label} needs an API key")
        check_endpoint(self.label, base_url, timeout_s)
        self.api_key = api_key.strip()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client or json_client(timeout_s)

    def __repr__(self) -> str:
        """Name the provider and its endpoint, never the key."""
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Return at most ``limit`` http(s) hits for ``query``, deduplicated by URL, best first."""
        if limit < 1 or not query.strip():
            return []
        return await self._call(query.strip(), limit)

    async def _call(self, query: str, limit: int) -> list[SearchHit]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            await self._client.aclose()

    def _retry_after(self, headers: httpx.Headers) -> float | None:
        """Seconds to wait after a 429; providers with their own headers override this."""
        return parse_retry_after(headers.get("retry-after"))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        payload: Any = None,
        status_messages: Mapping[int, str] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON; every failure is ``SearchUnavailable``.

        ``status_messages`` gives provider-specific wording for some HTTP statuses.
        """
        label = self.label
        request_headers = dict(headers)
        content = None
        if payload is not None:
            content = msgspec.json.encode(payload)
            request_headers["Content-Type"] = "application/json"
        try:
            with anyio.fail_after(self.timeout_s):
                async with self._client.stream(
                    method,
                    f"{self.base_url}{path}",
                    headers=request_headers,
                    params=params,
                    content=content,
                ) as response:
                    self._check_status(response, status_messages or {})
                    body = await read_capped(response, label)
        except (TimeoutError, httpx.TimeoutException):
            raise SearchUnavailable(f"{label} did not answer within {self.timeout_s:g}s") from None
        except httpx.ConnectError as exc:
            raise SearchUnavailable(f"{label} is unreachable ({type(exc).__name__})") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # InvalidURL (an over-long query, say) is no HTTPError, but it is a failed search.
            raise SearchUnavailable(f"{label} request failed ({type(exc).__name__})") from None
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise SearchUnavailable(f"{label} returned malformed JSON") from None

    def _check_status(self, response: httpx.Response, messages: Mapping[int, str]) -> None:
        status = response.status_code
        if status == 200:
            return
        label = self.label
        if status == 429:
            retry_after = self._retry_after(response.headers)
            hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            raise SearchRateLimited(
                f"{label} is rate-limiting requests (HTTP 429{hint})", retry_after=retry_after
            )
        if status in messages:
            raise SearchUnavailable(f"{messages[status]} (HTTP {status})")
        if status in (401, 403):
            raise SearchUnavailable(f"{label} rejected the API key (HTTP {status})")
        raise SearchUnavailable(f"{label} answered HTTP {status}")


def check_endpoint(label: str, base_url: str, timeout_s: float) -> None:
    """``ValueError`` unless ``base_url`` is an http(s) URL and ``timeout_s`` is positive."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{label} base URL must be an http(s) URL, got {base_url!r}")
    if not timeout_s > 0:
        raise ValueError(f"{label} timeout must be positive, got {timeout_s!r}")


def json_client(timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client of a search API: JSON, no redirects, no proxies from the environment.

    No redirects, so a key never follows one to another host; no environment proxies, since
    a stray HTTP(S)_PROXY would send every query (and key) somewhere else.
    """
    return httpx.AsyncClient(
        timeout=timeout_s,
        trust_env=False,
        follow_redirects=False,
        headers={"Accept": "application/json", "Accept-Encoding": "gzip, identity"},
    )


async def read_capped(response: httpx.Response, label: str) -> bytes:
    """The response body, or ``SearchUnavailable`` once it passes ``MAX_BODY_BYTES``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise SearchUnavailable(f"{label} answered with an oversized body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SearchUnavailable(f"{label} answered with an oversized body")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped; else None."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def http_url(value: Any) -> str | None:
    """``value`` stripped if it is an absolute http(s) URL with a host, else ``None``."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def clean_text(value: Any, *, max_chars: int = MAX_SNIPPET_CHARS) -> str:
    """Plain text of an API string: tags removed, entities decoded, whitespace collapsed.

    Brave wraps matched words in ``<strong>``; Exa may return a whole page as ``text``, so
    the result is cut at a word boundary to ``max_chars``.
    """
    if not isinstance(value, str):
        return ""
    text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    return text[: cut if cut > max_chars // 2 else max_chars].rstrip() + "…"


def collect_hits(
    items: Iterable[Any], limit: int, to_hit: Callable[[Mapping[str, Any]], SearchHit | None]
) -> list[SearchHit]:
    """Map JSON result objects to hits in order: non-objects and hits ``to_hit`` refuses are
    skipped, a repeated URL is kept once, and at most ``limit`` hits are returned."""
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        hit = to_hit(item)
        if hit is None or hit.url in seen:
            continue
        seen.add(hit.url)
        hits.append(hit)
        if len(hits) >= limit:
            break
    return hits


def results_list(data: Any, label: str, *path: str) -> list[Any]:
    """The list at ``data[path...]``; ``SearchUnavailable`` if any step has the wrong shape."""
    node = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, list):
        where = ".".join(path)
        raise SearchUnavailable(f"{label} returned JSON without a {where} list")
    return node
