"""SSRF through redirects and DNS: every hop is re-checked, names resolve once, TLS keeps SNI."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpcore
import pytest

from retrieval.errors import BlockedAddress, FetchError
from retrieval.net.addresses import parse_networks
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from retrieval.net.guard import GuardedBackend
from tests.security.servers import Dial, LoopbackServer, html, redirect, serving

ONLY_6 = FetchConfig(allow_private=("127.0.0.6/32",))


class CountingResolver:
    """A fake DNS whose answers change per call, to simulate rebinding."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, /) -> Sequence[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "//127.0.0.1:{port}/secret",  # scheme-relative
        "http://0x7f.1:{port}/secret",
    ],
)
async def test_redirect_from_allowed_server_to_private_target_is_refused(
    target: str, allowed: LoopbackServer, server: LoopbackServer, dials: list[Dial]
) -> None:
    allowed.routes["/go"] = redirect(target.format(port=server.port))
    async with HttpFetcher(ONLY_6) as fetcher:
        with pytest.raises(BlockedAddress):
            await fetcher.fetch(allowed.url("/go"))
    assert [r.target for r in allowed.requests] == ["/go"]
    assert server.connections == 0
    assert dials == [("127.0.0.6", allowed.port)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.6:70/_stats",
        "ftp://127.0.0.6/",
        "javascript:alert(1)",
        "http://user:pw@127.0.0.6/",
        "http://127.0.0.6:99999/",
    ],
)
async def test_redirect_to_non_http_or_bad_url_is_refused(
    location: str, allowed: LoopbackServer, dials: list[Dial]
) -> None:
    allowed.routes["/go"] = redirect(location)
    async with HttpFetcher(ONLY_6) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/go"))
    assert info.value.reason == "bad_url"
    assert dials == [("127.0.0.6", allowed.port)]


@pytest.mark.anyio
async def test_too_many_redirects(allowed: LoopbackServer) -> None:
    allowed.routes["/loop"] = redirect("/loop")
    config = FetchConfig(allow_private=("127.0.0.6/32",), max_redirects=3)
    async with HttpFetcher(config) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/loop"))
    assert info.value.reason == "redirects"
    assert len(allowed.requests) == 4  # the first request and three redirects


@pytest.mark.anyio
async def test_redirect_without_location_is_an_http_status_error(allowed: LoopbackServer) -> None:
    allowed.routes["/bare"] = redirect("")
    async with HttpFetcher(ONLY_6) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/bare"))
    assert info.value.reason == "http_status"


@pytest.mark.anyio
async def test_cookies_do_not_follow_redirects(allowed: LoopbackServer) -> None:
    allowed.routes["/login"] = redirect("/next", headers={"Set-Cookie": "sid=secret; Path=/"})
    allowed.routes["/next"] = html()
    async with HttpFetcher(ONLY_6) as fetcher:
        await fetcher.fetch(allowed.url("/login"))
        await fetcher.fetch(allowed.url("/next"))
    assert [r.target for r in allowed.requests] == ["/login", "/next", "/next"]
    assert all("cookie" not in r.headers for r in allowed.requests)


@pytest.mark.anyio
async def test_name_is_resolved_once_and_the_checked_ip_is_dialled(
    allowed: LoopbackServer, dials: list[Dial]
) -> None:
    allowed.routes["/"] = html()
    resolver = CountingResolver(["127.0.0.6"], ["127.0.0.1"])
    async with HttpFetcher(ONLY_6, resolver=resolver) as fetcher:
        page = await fetcher.fetch(allowed.url("/", host="site.test"))
    assert page.final_url == allowed.url("/", host="site.test")
    assert resolver.calls == ["site.test"]
    assert dials == [("127.0.0.6", allowed.port)]
    assert allowed.requests[0].headers["host"] == f"site.test:{allowed.port}"


@pytest.mark.anyio
async def test_rebinding_between_hops_is_caught(
    allowed: LoopbackServer, server: LoopbackServer, dials: list[Dial]
) -> None:
    """The second hop opens a new connection, so the name is resolved and checked again."""
    allowed.routes["/first"] = redirect("/second")
    resolver = CountingResolver(["127.0.0.6"], ["127.0.0.1"])
    async with HttpFetcher(ONLY_6, resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress):
            await fetcher.fetch(f"http://site.test:{allowed.port}/first")
    assert resolver.calls == ["site.test", "site.test"]
    assert dials == [("127.0.0.6", allowed.port)]
    assert server.connections == 0


@pytest.mark.anyio
async def test_dns_failures_are_dns_errors(dials: list[Dial]) -> None:
    async def nxdomain(host: str, /) -> Sequence[str]:
        raise OSError("Name or service not known")

    async def empty(host: str, /) -> Sequence[str]:
        return []

    async def garbage(host: str, /) -> Sequence[str]:
        return ["8.8.8.8", "not-an-ip"]

    for resolver in (nxdomain, empty, garbage):
        async with HttpFetcher(FetchConfig(), resolver=resolver) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch("http://nowhere.test/")
        assert info.value.reason == "dns"
    assert dials == []


@pytest.mark.anyio
async def test_unix_sockets_are_refused() -> None:
    async def never(host: str, /) -> Sequence[str]:
        raise AssertionError("not reached")

    backend = GuardedBackend(resolver=never, allow_private=parse_networks(["0.0.0.0/0"]))
    with pytest.raises(BlockedAddress):
        await backend.connect_unix_socket("/var/run/docker.sock")


@pytest.mark.anyio
async def test_guard_survives_a_dead_first_answer(allowed: LoopbackServer) -> None:
    """With several checked answers, a refused connection moves on to the next one."""
    allowed.routes["/"] = html()
    resolver = CountingResolver(["127.0.0.9", "127.0.0.6"])
    config = FetchConfig(allow_private=("127.0.0.6/32", "127.0.0.9/32"))
    async with HttpFetcher(config, resolver=resolver) as fetcher:
        page = await fetcher.fetch(allowed.url("/", host="two.test"))
    assert page.status == 200


def _self_signed(directory: Path) -> ssl.SSLContext:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=site.test", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.anyio
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
async def test_tls_uses_the_host_name_for_sni_and_verifies(
    tmp_path: Path, dials: list[Dial]
) -> None:
    """The guard dials the IP, yet TLS sends SNI ``site.test`` and rejects an untrusted cert."""
    context = _self_signed(tmp_path)
    names: list[str] = []

    def remember(sock: ssl.SSLObject, name: str, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember
    with serving("127.0.0.6", ssl_context=context) as tls_server:
        resolver = CountingResolver(["127.0.0.6"])
        async with HttpFetcher(ONLY_6, resolver=resolver) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(tls_server.url("/", host="site.test"))
    assert info.value.reason == "connect"
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert names == ["site.test"]
    assert dials == [("127.0.0.6", tls_server.port)]
    assert tls_server.requests == []


def test_anyio_backend_is_what_the_guard_wraps() -> None:
    """The dial recorder patches ``AnyIOBackend``; the guard must really use it."""
    backend = GuardedBackend(resolver=CountingResolver(["127.0.0.6"]))
    assert isinstance(backend._inner, httpcore.AnyIOBackend)
