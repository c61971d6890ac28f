"""SSRF: every spelling of a private or metadata address is refused before any connection.

``{port}`` in a URL is the port of a live server on 127.0.0.1, so a form that slipped
through the guard would really be answered; the test then asserts that the server saw no
connection and that the fetcher dialled nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from retrieval.errors import BlockedAddress, FetchError
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from tests.security.servers import Dial, LoopbackServer, html

EVERYTHING = ("0.0.0.0/0", "::/0")

# Fake DNS: names an attacker controls, answering private or mixed public+private sets.
DNS: dict[str, list[str]] = {
    "private.test": ["10.1.2.3"],
    "loopback.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
    "mixed-order.test": ["127.0.0.1", "93.184.216.34"],
    "mixed6.test": ["2606:4700::1", "::1"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "linklocal6.test": ["fe80::1%eth0"],
    "metadata.google.internal": ["169.254.169.254"],
}


async def fake_resolver(host: str, /) -> Sequence[str]:
    """Answer from ``DNS``; an unknown name fails like NXDOMAIN."""
    if host not in DNS:
        raise OSError(f"NXDOMAIN {host}")
    return DNS[host]


LOOPBACK_FORMS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0x7f.1",
    "127.1",
    "127.0.1",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "127.000.000.001",
    "127.0.0.1.",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
    "loopback.test",
    "mixed.test",
    "mixed-order.test",
]

OTHER_FORMS = [
    # 0.0.0.0/8 reaches the local host on Linux.
    "0.0.0.0",
    "0",
    "0x0",
    "[::ffff:0.0.0.0]",
    # 10/8, 172.16/12, 192.168/16 and friends, plain and numeric.
    "10.0.0.1",
    "167772161",
    "012.0.0.1",
    "0xa.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "0xac100001",
    "192.168.1.1",
    "3232235777",
    "0xc0.0xa8.1.1",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    # The metadata address in every spelling.
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "[::ffff:a9fe:a9fe]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]",
    "[::a9fe:a9fe]",
    "[2001:0:4136:e378:8000:63bf:5601:5601]",
    # IPv6 loopback, unspecified, unique-local, link-local, site-local, multicast, docs.
    "[::1]",
    "[::]",
    "[0:0:0:0:0:0:0:1]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "[fec0::1]",
    "[ff02::1]",
    "[2001:db8::1]",
    # Names resolving to private answers.
    "private.test",
    "mixed6.test",
    "mapped.test",
    "nat64.test",
    "linklocal6.test",
]

METADATA_FORMS = [
    "169.254.169.254",
    "168.63.129.16",
    "100.100.100.200",
    "[fd00:ec2::254]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "metadata.google.internal",
]


# httpx itself rejects four-part dotted hosts with leading zeros, before our guard runs.
REJECTED_BY_PARSER = {"0177.0.0.1", "127.000.000.001", "012.0.0.1", "0251.0376.0251.0376"}


async def assert_refused(
    url: str,
    server: LoopbackServer,
    dials: list[Dial],
    allow: tuple[str, ...] = (),
    expected: str = "blocked_address",
) -> None:
    """Fetching ``url`` fails with reason ``expected`` and nothing was dialled or reached."""
    async with HttpFetcher(FetchConfig(allow_private=allow), resolver=fake_resolver) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(url)
    assert info.value.reason == expected
    assert isinstance(info.value, BlockedAddress) == (expected == "blocked_address")
    assert dials == []
    assert server.connections == 0


@pytest.mark.anyio
@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_loopback_forms_are_refused(
    host: str, server: LoopbackServer, dials: list[Dial]
) -> None:
    expected = "bad_url" if host in REJECTED_BY_PARSER else "blocked_address"
    await assert_refused(f"http://{host}:{server.port}/", server, dials, expected=expected)


@pytest.mark.anyio
@pytest.mark.parametrize("host", OTHER_FORMS)
async def test_private_forms_are_refused(
    host: str, server: LoopbackServer, dials: list[Dial]
) -> None:
    expected = "bad_url" if host in REJECTED_BY_PARSER else "blocked_address"
    await assert_refused(f"http://{host}:{server.port}/", server, dials, expected=expected)


@pytest.mark.anyio
@pytest.mark.parametrize("host", METADATA_FORMS)
async def test_metadata_is_refused_even_when_private_is_allowed(
    host: str, server: LoopbackServer, dials: list[Dial]
) -> None:
    await assert_refused(f"http://{host}/latest/meta-data/", server, dials, allow=EVERYTHING)


@pytest.mark.anyio
async def test_https_is_guarded_too(server: LoopbackServer, dials: list[Dial]) -> None:
    await assert_refused(f"https://0x7f.1:{server.port}/", server, dials)


@pytest.mark.anyio
async def test_localhost_via_the_system_resolver_is_refused(
    server: LoopbackServer, dials: list[Dial]
) -> None:
    async with HttpFetcher(FetchConfig()) as fetcher:
        with pytest.raises(BlockedAddress):
            await fetcher.fetch(server.url("/", host="localhost"))
    assert dials == []
    assert server.connections == 0


@pytest.mark.anyio
async def test_allow_private_is_exact(allowed: LoopbackServer, dials: list[Dial]) -> None:
    """127.0.0.6/32 opens 127.0.0.6 and nothing else on the loopback network."""
    allowed.routes["/"] = html()
    config = FetchConfig(allow_private=("127.0.0.6/32",))
    async with HttpFetcher(config, resolver=fake_resolver) as fetcher:
        page = await fetcher.fetch(allowed.url("/"))
        with pytest.raises(BlockedAddress):
            await fetcher.fetch(allowed.url("/", host="127.0.0.7"))
    assert page.status == 200
    assert dials == [("127.0.0.6", allowed.port)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.6/",
        "file:///etc/passwd",
        "gopher://127.0.0.6:70/_GET",
        "javascript:alert(1)",
        "http:///nohost",
        "http://user:secret@127.0.0.6/",
        "http://evil.com\\@127.0.0.6/",
        "http://127.0.0.6:0/",
        "http://127.0.0.6:99999/",
        "http://127.0.0.6:-1/",
        "http://256.0.0.1/",
        "http://1.2.3.4.5/",
        "http://09.0.0.1/",
        "http://[fe80::1%25eth0]/",
        "http://exa mple.com/",
        # Fullwidth "example。127.0.0.1": IDNA mapping must not smuggle in a dotted quad.
        "http://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
    ],
)
async def test_bad_urls_are_refused_without_dialling(url: str, dials: list[Dial]) -> None:
    config = FetchConfig(allow_private=EVERYTHING)
    async with HttpFetcher(config, resolver=fake_resolver) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(url)
    assert info.value.reason == "bad_url"
    assert dials == []
