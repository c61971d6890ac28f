"""The connect-time SSRF guard: check the address actually dialled, not the URL string.

``GuardedBackend`` is an ``httpcore`` network backend. When the connection pool asks it for
a TCP connection to ``host:port`` it resolves ``host`` once, refuses if any answer is not a
public address (``addresses.may_connect``), and dials one of exactly those checked IPs. A
DNS answer cannot change between the check and the dial (no rebinding window), and TLS
still verifies and sends SNI for the original host name, because ``httpcore`` starts TLS
with the URL's host, not with the address we connected to.

``check_url`` is the cheap pre-flight half: scheme, userinfo, port and host syntax, and
browser-style numeric IPv4 hosts (``http://2130706433/``) rewritten to dotted form so that
no resolver ever gets the chance to interpret them differently.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import typing
from collections.abc import Sequence
from typing import Protocol

import anyio
import httpcore
import httpx

from retrieval.errors import BlockedAddress, FetchError
from retrieval.net.addresses import (
    IPAddress,
    IPNetwork,
    may_connect,
    parse_ip,
    parse_legacy_ipv4,
)

# Dial at most this many checked answers (v6 then v4, say) before giving up on a host.
_MAX_DIAL_ATTEMPTS = 3
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


class Resolver(Protocol):
    """Resolves a host name to IP address strings (any order, duplicates allowed)."""

    async def __call__(self, host: str, /) -> Sequence[str]:
        """Return every address ``host`` resolves to; raise ``OSError`` if it does not."""
        ...


async def system_resolver(host: str, /) -> list[str]:
    """Resolve with the event loop's ``getaddrinfo`` (the system resolver, in a thread)."""
    infos = await anyio.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str | httpx.URL) -> httpx.URL:
    """Parse and vet a URL before any network activity; raise ``FetchError("bad_url")``.

    Only ``http``/``https``, no userinfo, a non-empty syntactically valid host, a port in
    1..65535. Numeric IPv4 spellings are normalised to dotted quads (the guard then judges
    that address like any other).
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError) as exc:
        raise FetchError("bad_url", f"unparsable URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError("bad_url", f"scheme {parsed.scheme!r} is not http or https")
    if parsed.userinfo:
        raise FetchError("bad_url", "URLs with credentials are not fetched")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchError("bad_url", f"port {parsed.port} is out of range")
    # raw_host is the ASCII (IDNA-encoded) form the connection pool will resolve.
    host = parsed.raw_host.decode("ascii", errors="replace").lower()
    if not host:
        raise FetchError("bad_url", "URL has no host")
    if ":" in host:
        if "%" in host or parse_ip(host) is None:
            raise FetchError("bad_url", f"bad IPv6 host {host!r}")
        return parsed
    if _HOSTNAME.fullmatch(host) is None:
        raise FetchError("bad_url", f"bad host name {host!r}")
    try:
        numeric = parse_legacy_ipv4(host)
    except ValueError as exc:
        raise FetchError("bad_url", str(exc)) from exc
    if numeric is not None and str(numeric) != host:
        return parsed.copy_with(host=str(numeric))
    return parsed


async def resolve_checked(
    host: str, resolver: Resolver, allow_private: Sequence[IPNetwork]
) -> list[IPAddress]:
    """Resolve ``host`` once and return its answers if every one of them may be dialled.

    IP literals (including numeric IPv4 spellings) are judged without resolving. Raises
    ``BlockedAddress`` if ANY answer is refused (a mixed public/private answer is how DNS
    rebinding hides), ``FetchError("dns")`` if resolution fails or returns no address.
    """
    literal = parse_ip(host)
    if literal is None:
        try:
            literal = parse_legacy_ipv4(host)
        except ValueError as exc:
            raise FetchError("bad_url", str(exc)) from exc
    if literal is not None:
        answers: list[IPAddress] = [literal]
    else:
        try:
            raw = await resolver(host)
        except (OSError, UnicodeError) as exc:
            raise FetchError("dns", f"cannot resolve {host!r}: {exc}") from exc
        parsed = [parse_ip(a) for a in raw]
        answers = [a for a in parsed if a is not None]
        if not answers or len(answers) != len(parsed):
            raise FetchError("dns", f"no usable address for {host!r}: {list(raw)!r}")
    refused = [a for a in answers if not may_connect(a, allow_private)]
    if refused:
        how = "is" if literal is not None else "resolves to"
        raise BlockedAddress(f"{host!r} {how} the non-public address {refused[0]}")
    return answers


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An ``httpcore`` backend that dials only addresses the SSRF policy allows."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        allow_private: Sequence[IPNetwork] = (),
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._allow_private = tuple(allow_private)
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and check ``host``, then connect to one of the checked addresses."""
        try:
            with anyio.fail_after(timeout):
                answers = await resolve_checked(host, self._resolver, self._allow_private)
                return await self._dial(answers, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host!r} timed out") from exc

    async def _dial(
        self,
        answers: Sequence[IPAddress],
        port: int,
        local_address: str | None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        error: httpcore.ConnectError | None = None
        for ip in answers[:_MAX_DIAL_ATTEMPTS]:
            # The mapped IPv4 address is the same host; dialling it needs no IPv6 stack.
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            target = str(mapped if mapped is not None else ip)
            try:
                return await self._inner.connect_tcp(
                    target, port, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None  # answers is never empty
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: a web fetcher never talks to local sockets."""
        raise BlockedAddress(f"unix socket {path!r} is not a web address")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the wrapped backend (``httpcore`` uses it between retries)."""
        await self._inner.sleep(seconds)
