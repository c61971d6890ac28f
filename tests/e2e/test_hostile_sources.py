"""A request whose search results include hostile pages is still answered from the others."""

from __future__ import annotations

import gzip
import time
from typing import Any

import httpx
import pytest

Q = "Were Scott Derrickson and Ed Wood of the same nationality?"


def _result(url: str, title: str) -> dict[str, Any]:
    return {
        "url": url,
        "title": title,
        "content": "Scott Derrickson Ed Wood nationality",
        "publishedDate": None,
        "engine": "fake",
        "engines": ["fake"],
        "positions": [1],
        "category": "general",
    }


@pytest.fixture
def hostile(simweb: Any, searxng: Any) -> list[str]:
    bomb = gzip.compress(b"<p>" + b"A" * 60_000_000 + b"</p>", compresslevel=9)
    urls = [
        simweb.add_page(
            6,
            "/bomb",
            bomb,
            headers={"content-encoding": "gzip"},
        ),
        simweb.add_page(6, "/drip", b"<html><p>slow</p>" * 400, chunk_size=1, chunk_delay_s=0.5),
        simweb.add_page(6, "/image", b"\x89PNG\r\n\x1a\n" + b"0" * 1000, content_type="image/png"),
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/refused",
    ]
    searxng.inject_results = [_result(u, "Scott Derrickson and Ed Wood") for u in urls]
    return urls


def test_answer_survives_hostile_results(footnote: str, hostile: list[str]) -> None:
    t0 = time.perf_counter()
    r = httpx.post(
        f"{footnote}/v1/chat/completions",
        json={"model": "base", "messages": [{"role": "user", "content": Q}]},
        timeout=30,
    )
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    body = r.json()
    # The server's per-page deadline is 3 s; the drip and the bomb never hold the answer.
    assert elapsed < 6.0
    assert not set(body["citations"]) & set(hostile)
    assert any("Scott_Derrickson" in u or "Ed_Wood" in u for u in body["citations"])
    assert body["basis"][0]["citations"]
