"""``HttpFetcher``: fetch one web page safely, within a deadline and a byte budget.

Every hop of a fetch goes through the connect-time SSRF guard (``guard.GuardedBackend``):
redirects are followed by hand and each target is vetted (``guard.check_url``) and dialled
through the same guard. Bodies are read raw and inflated by ``decoding.BoundedDecoder``.

Size policy: when a body passes ``max_wire_bytes`` (compressed, as read) or
``max_decoded_bytes`` (inflated) the fetcher stops reading and returns the prefix it has
with ``truncated=True``: the first megabytes of an HTML or text page are still good
evidence, and the extractor cuts HTML to ~2 MB anyway. A PDF prefix is useless (its
cross-reference table sits at the end), so an oversized PDF is ``FetchError("too_large")``.
A gzip bomb therefore costs at most ``max_decoded_bytes`` of memory and a few milliseconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.cookiejar
import socket
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio
import httpcore
import httpx
import msgspec

from retrieval.errors import FetchError
from retrieval.net.addresses import parse_networks
from retrieval.net.decoding import (
    ACCEPTED_TYPES,
    BoundedDecoder,
    looks_like_html,
    parse_content_type,
)
from retrieval.net.guard import GuardedBackend, Resolver, check_url, system_resolver
from retrieval.types import Page

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.1"


class FetchConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Limits and policy of one ``HttpFetcher``.

    ``timeout_s`` is the overall deadline of one ``fetch`` (queueing, redirects and body
    included); the byte caps bound what is read from the socket and what inflation may
    produce; ``allow_private`` lists CIDRs reachable despite the private-address block
    (metadata addresses excepted); ``max_concurrency`` and ``max_per_host`` bound
    simultaneous fetches overall and per host.
    """

    timeout_s: float = 5.0
    connect_timeout_s: float = 3.0
    max_wire_bytes: int = 5_000_000
    max_decoded_bytes: int = 10_000_000
    max_redirects: int = 5
    allow_private: tuple[str, ...] = ()
    user_agent: str = "Footnote/0.1 (research answer engine)"
    max_concurrency: int = 64
    max_per_host: int = 8


@dataclasses.dataclass
class _HostSlot:
    """The per-host concurrency limit and how many fetches hold or wait for it."""

    semaphore: anyio.Semaphore
    users: int = 0


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Never store or send a cookie: a Set-Cookie on one hop must not follow a redirect."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: Any) -> bool:
        return False


class _CoreStream(httpx.AsyncByteStream):
    """An ``httpcore`` response body seen as an ``httpx`` stream (exceptions unmapped)."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Sends ``httpx`` requests through an ``httpcore`` pool that dials via the guard.

    ``httpx.AsyncHTTPTransport`` cannot take a network backend, hence this small adapter;
    ``httpcore`` errors pass through unmapped and ``HttpFetcher`` maps them all.
    """

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = await self._pool.handle_async_request(core_request)
        if not isinstance(response.stream, AsyncIterable):  # pragma: no cover
            raise TypeError("httpcore returned a synchronous stream to an async pool")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CoreStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class HttpFetcher:
    """Fetches web pages through the SSRF guard; satisfies ``retrieval.protocols.Fetcher``.

    One shared client and connection pool per instance; at most ``max_concurrency``
    fetches at once, ``max_per_host`` of them to any one host. Call ``aclose`` when done.
    """

    def __init__(self, config: FetchConfig, *, resolver: Resolver | None = None) -> None:
        self._config = config
        backend = GuardedBackend(
            resolver=resolver if resolver is not None else system_resolver,
            allow_private=parse_networks(config.allow_private),
        )
        pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=config.max_concurrency * 2,
            max_keepalive_connections=config.max_concurrency,
            keepalive_expiry=5.0,
            network_backend=backend,
        )
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(pool),
            follow_redirects=False,
            trust_env=False,
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            headers={
                "User-Agent": config.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, identity",
            },
        )
        self._limiter = anyio.CapacityLimiter(config.max_concurrency)
        self._hosts: dict[str, _HostSlot] = {}

    async def __aenter__(self) -> HttpFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared client and every pooled connection."""
        await self._client.aclose()

    async def fetch(self, url: str) -> Page:
        """Fetch ``url``, following up to ``max_redirects`` redirects, within ``timeout_s``.

        The deadline covers everything, waiting for a concurrency slot included, so a call
        never outlives it. Raises ``FetchError`` (``BlockedAddress`` for the SSRF guard);
        no other exception escapes except cancellation.
        """
        try:
            with anyio.fail_after(self._config.timeout_s):
                async with self._limiter:
                    return await self._follow(url)
        except TimeoutError as exc:
            raise FetchError("timeout", f"{url} took over {self._config.timeout_s}s") from exc

    async def _follow(self, url: str) -> Page:
        target = check_url(url)
        for _ in range(self._config.max_redirects + 1):
            async with self._host_slot(target.host):
                result = await self._get(target)
            if isinstance(result, Page):
                return msgspec.structs.replace(result, url=url)
            target = result
        raise FetchError("redirects", f"{url} redirected more than {self._config.max_redirects}x")

    @contextlib.asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = _HostSlot(anyio.Semaphore(self._config.max_per_host))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            # Drop idle hosts so a long-running fetcher does not collect every host it saw.
            slot.users -= 1
            if slot.users == 0:
                del self._hosts[host]

    async def _get(self, url: httpx.URL) -> Page | httpx.URL:
        """One request: the page, or the vetted URL a redirect points to."""
        try:
            response = await self._client.send(self._client.build_request("GET", url), stream=True)
            try:
                return await self._handle(url, response)
            finally:
                await response.aclose()
        except FetchError:
            raise
        except Exception as exc:
            raise _map_error(exc) from exc

    async def _handle(self, url: httpx.URL, response: httpx.Response) -> Page | httpx.URL:
        status = response.status_code
        if status in _REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise FetchError("http_status", f"{url} answered {status} without Location")
            try:
                next_url = url.join(location.strip())
            except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
                raise FetchError("bad_url", f"bad redirect {location!r}: {exc}") from exc
            # Every hop is a GET with no body, so 301/302/303 need no method rewrite.
            return check_url(next_url)
        if not 200 <= status < 300:
            raise FetchError("http_status", f"{url} answered {status}")
        mime, charset = parse_content_type(response.headers.get("content-type"))
        if mime and mime not in ACCEPTED_TYPES:
            raise FetchError("content_type", f"{url} is {mime}")
        body, truncated = await self._read_body(response)
        if truncated and mime == "application/pdf":
            raise FetchError("too_large", f"{url} is a PDF over the size limit")
        if not mime:
            if not looks_like_html(body):
                raise FetchError("content_type", f"{url} has no Content-Type and is not HTML")
            mime = "text/html"
        return Page(
            url=str(url),
            final_url=str(url),
            status=status,
            content_type=mime,
            body=body,
            charset=charset,
            truncated=truncated,
        )

    async def _read_body(self, response: httpx.Response) -> tuple[bytes, bool]:
        """Read raw bytes up to the wire cap, inflating up to the decoded cap."""
        decoder = BoundedDecoder(
            response.headers.get("content-encoding"), self._config.max_decoded_bytes
        )
        parts: list[bytes] = []
        wire_left = self._config.max_wire_bytes
        wire_capped = False
        drained = 0
        async for raw in response.aiter_raw():
            if decoder.finished and not decoder.truncated:
                # The compressed stream ended before the HTTP message did (h11 has yet to see
                # its end): read the short tail so the connection goes back to the pool
                # instead of being dropped, but never an endless one.
                drained += len(raw)
                if drained > _DRAIN_LIMIT:
                    break
                continue
            if len(raw) > wire_left:
                raw, wire_capped = raw[:wire_left], True
            wire_left -= len(raw)
            parts.append(decoder.feed(raw))
            if wire_capped or decoder.truncated:
                break
        return b"".join(parts), wire_capped or decoder.truncated


# Bytes read past the end of a compressed body to keep its connection reusable.
_DRAIN_LIMIT = 64 * 1024


def _map_error(exc: Exception) -> FetchError:
    """Translate a foreign exception (httpx, httpcore, OSError, ssl, zlib) to a reason code."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException | TimeoutError):
        return FetchError("timeout", detail)
    if isinstance(exc, socket.gaierror):
        return FetchError("dns", detail)
    if isinstance(
        exc,
        httpx.InvalidURL | httpx.UnsupportedProtocol | httpcore.UnsupportedProtocol | UnicodeError,
    ):
        return FetchError("bad_url", detail)
    if isinstance(exc, httpx.DecodingError | zlib.error):
        return FetchError("decoding", detail)
    # Everything else (connection refused or reset, TLS failures, protocol violations,
    # unexpected library errors) means the page could not be retrieved from the server.
    return FetchError("connect", detail)
