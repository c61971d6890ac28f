"""HttpFetcher against real loopback servers, plus its decoding and URL helpers."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import httpcore
import httpx
import pytest

from retrieval.errors import FetchError
from retrieval.net.decoding import BoundedDecoder, looks_like_html, parse_content_type
from retrieval.net.fetcher import FetchConfig, HttpFetcher, _map_error
from retrieval.net.guard import check_url
from tests.security.servers import (
    LoopbackServer,
    gzipped,
    html,
    redirect,
    respond,
    serving,
    stall,
)

CONFIG = FetchConfig(allow_private=("127.0.0.6/32",))


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    """A loopback web site on 127.0.0.6."""
    with serving("127.0.0.6") as srv:
        yield srv


@pytest.mark.anyio
async def test_fetches_a_gzip_page_with_its_charset(site: LoopbackServer) -> None:
    text = "<!doctype html><html><body><p>Café crème, déjà vu</p></body></html>" * 50
    site.routes["/page"] = gzipped(text.encode("iso-8859-1"), "Text/HTML; Charset=ISO-8859-1")
    async with HttpFetcher(CONFIG) as fetcher:
        page = await fetcher.fetch(site.url("/page"))
    assert page.url == page.final_url == site.url("/page")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.charset == "iso-8859-1"
    assert page.body.decode(page.charset) == text
    assert not page.truncated
    sent = site.requests[0].headers
    assert sent["accept-encoding"] == "gzip, identity"
    assert sent["user-agent"] == CONFIG.user_agent


@pytest.mark.anyio
@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
async def test_fetches_deflate_in_both_flavours(site: LoopbackServer, wbits: int) -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = packer.compress(b"plain text " * 1000) + packer.flush()
    site.routes["/t"] = respond(
        body=body, headers={"Content-Type": "text/plain", "Content-Encoding": "deflate"}
    )
    async with HttpFetcher(CONFIG) as fetcher:
        page = await fetcher.fetch(site.url("/t"))
    assert page.body == b"plain text " * 1000
    assert page.content_type == "text/plain"
    assert page.charset is None


@pytest.mark.anyio
async def test_follows_a_redirect_chain(site: LoopbackServer) -> None:
    site.routes["/a"] = redirect("b", status=301)  # relative
    site.routes["/b"] = redirect(site.url("/c?x=1"), status=302)  # absolute
    site.routes["/c"] = redirect("/d#frag", status=303)
    site.routes["/d"] = redirect("/e", status=307)
    site.routes["/e"] = redirect("/f", status=308)
    site.routes["/f"] = html("<p>end</p>")
    async with HttpFetcher(CONFIG) as fetcher:
        page = await fetcher.fetch(site.url("/a"))
    assert page.url == site.url("/a")
    assert page.final_url == site.url("/f")
    assert page.body == b"<p>end</p>"
    assert [r.target for r in site.requests] == ["/a", "/b", "/c?x=1", "/d", "/e", "/f"]
    assert {r.method for r in site.requests} == {"GET"}


@pytest.mark.anyio
async def test_redirect_chain_within_allowed_servers(site: LoopbackServer) -> None:
    with serving("127.0.0.7") as other:
        other.routes["/there"] = html("<p>other</p>")
        site.routes["/here"] = redirect(other.url("/there"))
        config = FetchConfig(allow_private=("127.0.0.6/32", "127.0.0.7/32"))
        async with HttpFetcher(config) as fetcher:
            page = await fetcher.fetch(site.url("/here"))
    assert page.final_url == other.url("/there")
    assert page.body == b"<p>other</p>"


@pytest.mark.anyio
async def test_numeric_host_is_normalised_before_dialling(site: LoopbackServer) -> None:
    site.routes["/"] = html()
    config = FetchConfig(allow_private=("127.0.0.6/32",))
    async with HttpFetcher(config) as fetcher:
        page = await fetcher.fetch(f"http://0x7f.6:{site.port}/")
    assert page.url == f"http://0x7f.6:{site.port}/"
    assert page.final_url == site.url("/")
    assert site.requests[0].headers["host"] == f"127.0.0.6:{site.port}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/xhtml+xml; charset=utf-8", "application/xhtml+xml"),
        ("application/pdf", "application/pdf"),
        ('text/plain;charset="UTF-8"', "text/plain"),
        (None, "text/html"),  # untyped, but starts like HTML
    ],
)
async def test_accepted_content_types(
    site: LoopbackServer, content_type: str | None, expected: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    site.routes["/x"] = respond(body=b"  <!DOCTYPE html><title>t</title>", headers=headers)
    async with HttpFetcher(CONFIG) as fetcher:
        page = await fetcher.fetch(site.url("/x"))
    assert page.content_type == expected


@pytest.mark.anyio
async def test_decoded_cap_truncates_a_plain_page(site: LoopbackServer) -> None:
    site.routes["/long"] = gzipped(b"<p>" + b"word " * 100_000)
    config = FetchConfig(allow_private=("127.0.0.6/32",), max_decoded_bytes=10_000)
    async with HttpFetcher(config) as fetcher:
        page = await fetcher.fetch(site.url("/long"))
    assert page.truncated
    assert page.body == (b"<p>" + b"word " * 100_000)[:10_000]


@pytest.mark.anyio
async def test_per_host_limit_bounds_concurrent_connections(site: LoopbackServer) -> None:
    site.routes["/slow"] = stall(0.2, html())
    config = FetchConfig(allow_private=("127.0.0.6/32",), max_per_host=2)
    async with HttpFetcher(config) as fetcher, anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(fetcher.fetch, site.url("/slow"))
    assert len(site.requests) == 6
    assert site.max_active == 2


@pytest.mark.anyio
async def test_global_limit_bounds_concurrent_fetches(site: LoopbackServer) -> None:
    site.routes["/slow"] = stall(0.2, html())
    config = FetchConfig(allow_private=("127.0.0.6/32",), max_concurrency=3, max_per_host=10)
    async with HttpFetcher(config) as fetcher, anyio.create_task_group() as tg:
        for _ in range(7):
            tg.start_soon(fetcher.fetch, site.url("/slow"))
    assert site.max_active == 3


@pytest.mark.anyio
async def test_proxy_environment_is_ignored(
    site: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.routes["/"] = html()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.6:1")
    async with HttpFetcher(CONFIG) as fetcher:
        page = await fetcher.fetch(site.url("/"))
    assert page.status == 200


@pytest.mark.anyio
async def test_default_resolver_resolves_real_names(site: LoopbackServer) -> None:
    """``localhost`` resolves through getaddrinfo; allowed here, so the fetch succeeds."""
    with serving("127.0.0.1") as local:
        local.routes["/"] = html()
        async with HttpFetcher(FetchConfig(allow_private=("127.0.0.1/32", "::1/128"))) as f:
            page = await f.fetch(local.url("/", host="localhost"))
    assert page.status == 200


@pytest.mark.anyio
async def test_connect_timeout_covers_a_hanging_resolver() -> None:
    async def hanging(host: str, /) -> Sequence[str]:
        await anyio.sleep(30)
        return ["127.0.0.6"]

    config = FetchConfig(allow_private=("127.0.0.6/32",), connect_timeout_s=0.2, timeout_s=5)
    async with HttpFetcher(config, resolver=hanging) as fetcher:
        with anyio.fail_after(2):
            with pytest.raises(FetchError) as info:
                await fetcher.fetch("http://slow-dns.test/")
    assert info.value.reason == "timeout"


@pytest.mark.anyio
async def test_one_fetcher_serves_several_pages(site: LoopbackServer) -> None:
    site.routes["/1"] = html("<p>one</p>")
    site.routes["/2"] = html("<p>two</p>")
    async with HttpFetcher(CONFIG) as fetcher:
        bodies = [(await fetcher.fetch(site.url(p))).body for p in ("/1", "/2", "/1")]
    assert bodies == [b"<p>one</p>", b"<p>two</p>", b"<p>one</p>"]


def test_bad_allow_private_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        HttpFetcher(FetchConfig(allow_private=("localhost",)))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/a?b#c", "http://example.com/a?b#c"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f.1:8080/x", "http://127.0.0.1:8080/x"),
        ("https://[2606:4700::1]/", "https://[2606:4700::1]/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://under_score.example./", "http://under_score.example./"),
    ],
)
def test_check_url_normalises(url: str, expected: str) -> None:
    assert str(check_url(url)) == expected


@pytest.mark.parametrize(
    "url",
    ["", "example.com", "ws://example.com/", "http://a..b/", "http://-a.com/", "http://[::1/"],
)
def test_check_url_rejects(url: str) -> None:
    with pytest.raises(FetchError) as info:
        check_url(url)
    assert info.value.reason == "bad_url"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpcore.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (OSError(111, "refused"), "connect"),
        (httpcore.RemoteProtocolError("bad"), "connect"),
        (httpx.InvalidURL("bad"), "bad_url"),
        (zlib.error("bad"), "decoding"),
        (RuntimeError("surprise"), "connect"),
    ],
)
def test_foreign_errors_map_to_reasons(exc: Exception, reason: str) -> None:
    assert _map_error(exc).reason == reason


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/html", ("text/html", None)),
        ('TEXT/HTML ; Charset = "Windows-1252"', ("text/html", "windows-1252")),
        ("text/html; foo=bar; charset=utf-8", ("text/html", "utf-8")),
        ("text/html; charset=no-such-codec", ("text/html", None)),
        ("", ("", None)),
        (None, ("", None)),
    ],
)
def test_parse_content_type(header: str | None, expected: tuple[str, str | None]) -> None:
    assert parse_content_type(header) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<!DOCTYPE html><html>", True),
        (b"\xef\xbb\xbf\n  <html lang=en>", True),
        (b"<p>hi", True),
        (b"<pre>x", False),  # "<p" must be followed by a space or ">"
        (b"<!-- c -->", True),
        (b"%PDF-1.7", False),
        (b"", False),
        (b"<?xml version='1.0'?>", False),
    ],
)
def test_looks_like_html(body: bytes, expected: bool) -> None:
    assert looks_like_html(body) is expected


def _feed_all(decoder: BoundedDecoder, data: bytes, step: int) -> bytes:
    return b"".join(decoder.feed(data[i : i + step]) for i in range(0, len(data), step))


@pytest.mark.parametrize("step", [1, 7, 4096, 10**9])
def test_bounded_decoder_exact_fit_and_overflow(step: int) -> None:
    raw = bytes(range(256)) * 40
    packed = gzip.compress(raw)
    exact = BoundedDecoder("gzip", len(raw))
    assert _feed_all(exact, packed, step) == raw
    assert not exact.truncated and exact.finished
    short = BoundedDecoder("gzip", len(raw) - 1)
    assert _feed_all(short, packed, step) == raw[:-1]
    assert short.truncated


def test_bounded_decoder_output_never_exceeds_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    decoder = BoundedDecoder("x-gzip", 12_345)
    sizes = [len(decoder.feed(bomb[i : i + 1000])) for i in range(0, len(bomb), 1000)]
    assert sum(sizes) == 12_345
    assert decoder.truncated


def test_bounded_decoder_identity_and_unknown_codings() -> None:
    decoder = BoundedDecoder(None, 5)
    assert decoder.feed(b"abc") + decoder.feed(b"def") == b"abcde"
    assert decoder.truncated
    with pytest.raises(FetchError) as info:
        BoundedDecoder("br", 10)
    assert info.value.reason == "decoding"


def test_bounded_decoder_rejects_corrupt_data() -> None:
    with pytest.raises(FetchError) as info:
        BoundedDecoder("gzip", 100).feed(b"\x1f\x8b\x08\x00garbage-garbage")
    assert info.value.reason == "decoding"


@pytest.mark.anyio
async def test_gzip_pages_keep_their_connection_alive(
    simweb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.security.servers import record_dials

    dials = record_dials(monkeypatch)
    pages = [p for p in simweb.pages if p["site"] == 2][:3]
    async with HttpFetcher(FetchConfig(allow_private=("127.0.0.0/8",))) as fetcher:
        for page in pages:
            got = await fetcher.fetch(simweb.url_for(2, page["path"]))
            assert got.body.decode("utf-8") == page["html"]
    # Reading past the end of the gzip stream lets httpcore reuse the connection.
    assert len(dials) == 1
