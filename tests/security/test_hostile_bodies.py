"""Hostile servers: bombs, drips, endless bodies and wrong types stay within bounds."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib

import pytest

from retrieval.errors import FetchError
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from tests.security.servers import (
    Handler,
    LoopbackServer,
    Request,
    drip,
    endless,
    respond,
    stall,
)

ALLOW = ("127.0.0.6/32",)


def _zeros_gzip(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * 1_000_000
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


@pytest.mark.anyio
async def test_gzip_bomb_is_cut_at_the_decoded_cap(allowed: LoopbackServer) -> None:
    bomb = _zeros_gzip(100_000_000)  # ~100 KB on the wire, 100 MB inflated
    allowed.routes["/bomb"] = respond(
        body=bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
    )
    config = FetchConfig(allow_private=ALLOW, max_decoded_bytes=1_000_000)
    async with HttpFetcher(config) as fetcher:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            page = await fetcher.fetch(allowed.url("/bomb"))
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(bomb) < 150_000
    assert page.truncated
    assert page.body == b"\0" * 1_000_000
    assert peak < 8_000_000  # a few copies of the 1 MB cap, nowhere near 100 MB
    assert elapsed < 2.0


@pytest.mark.anyio
async def test_drip_feed_is_bounded_by_the_overall_deadline(allowed: LoopbackServer) -> None:
    """httpx's read timeout never fires on a 1-byte-per-0.5 s drip; the deadline does."""
    allowed.routes["/drip"] = drip(0.5)
    config = FetchConfig(allow_private=ALLOW, timeout_s=1.5)
    async with HttpFetcher(config) as fetcher:
        started = time.perf_counter()
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/drip"))
        elapsed = time.perf_counter() - started
    assert info.value.reason == "timeout"
    assert 1.4 < elapsed < 2.5


@pytest.mark.anyio
async def test_server_that_never_answers_times_out(allowed: LoopbackServer) -> None:
    allowed.routes["/hang"] = stall(30, respond())
    config = FetchConfig(allow_private=ALLOW, timeout_s=0.5)
    async with HttpFetcher(config) as fetcher:
        started = time.perf_counter()
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/hang"))
    assert info.value.reason == "timeout"
    assert time.perf_counter() - started < 1.5


@pytest.mark.anyio
async def test_endless_body_is_cut_at_the_wire_cap(allowed: LoopbackServer) -> None:
    allowed.routes["/endless"] = endless()
    config = FetchConfig(allow_private=ALLOW, max_wire_bytes=300_000)
    async with HttpFetcher(config) as fetcher:
        started = time.perf_counter()
        page = await fetcher.fetch(allowed.url("/endless"))
    assert page.truncated
    assert len(page.body) == 300_000
    assert page.body.startswith(b"<p>aaa")
    assert time.perf_counter() - started < 2.0


@pytest.mark.anyio
async def test_endless_gzip_body_is_cut_at_the_wire_cap(allowed: LoopbackServer) -> None:
    """A compressed stream too long on the wire is cut even while inflation is cheap."""
    allowed.routes["/big"] = respond(
        body=gzip.compress(bytes(range(256)) * 4000, compresslevel=1),
        headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    config = FetchConfig(allow_private=ALLOW, max_wire_bytes=2_000)
    async with HttpFetcher(config) as fetcher:
        page = await fetcher.fetch(allowed.url("/big"))
    assert page.truncated
    assert 0 < len(page.body) < 256 * 4000
    assert (bytes(range(256)) * 4000).startswith(page.body)


@pytest.mark.anyio
async def test_oversized_pdf_is_too_large(allowed: LoopbackServer) -> None:
    """A PDF prefix is useless (the xref table is at the end), so no truncated PDF."""
    allowed.routes["/doc.pdf"] = endless("application/pdf")
    config = FetchConfig(allow_private=ALLOW, max_wire_bytes=100_000)
    async with HttpFetcher(config) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/doc.pdf"))
    assert info.value.reason == "too_large"


HTML = {"Content-Type": "text/html"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (respond(body=b"\x89PNG\r\n", headers={"Content-Type": "image/png"}), "content_type"),
        (respond(body=b"{}", headers={"Content-Type": "application/json"}), "content_type"),
        (respond(body=b"\x00\x01binary"), "content_type"),  # no type, not HTML
        (respond(500, body=b"<html>oops</html>", headers=HTML), "http_status"),
        (respond(404, headers=HTML), "http_status"),
        (respond(204), "content_type"),  # 2xx but no body: not a page
        (respond(body=b"x", headers={**HTML, "Content-Encoding": "br"}), "decoding"),
        (respond(body=b"not gzip", headers={**HTML, "Content-Encoding": "gzip"}), "decoding"),
    ],
    ids=["png", "json", "untyped-binary", "500", "404", "204-empty", "brotli", "corrupt-gzip"],
)
async def test_unusable_responses_are_refused(
    handler: Handler, reason: str, allowed: LoopbackServer
) -> None:
    allowed.routes["/x"] = handler
    async with HttpFetcher(FetchConfig(allow_private=ALLOW)) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/x"))
    assert info.value.reason == reason


@pytest.mark.anyio
async def test_connection_refused_is_a_connect_error() -> None:
    # Port 1 on 127.0.0.6: nothing listens there.
    async with HttpFetcher(FetchConfig(allow_private=ALLOW)) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch("http://127.0.0.6:1/")
    assert info.value.reason == "connect"


@pytest.mark.anyio
async def test_garbage_instead_of_http_is_a_connect_error(allowed: LoopbackServer) -> None:
    async def garbage(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    allowed.routes["/"] = garbage
    async with HttpFetcher(FetchConfig(allow_private=ALLOW)) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(allowed.url("/"))
    assert info.value.reason == "connect"
