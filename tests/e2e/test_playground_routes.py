"""The playground's routes: the page and its files, their types and headers, no traversal."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from app.api.playground import STATIC_FILES
from tests.fakes.footnote_server import StartFootnote

KEY = "playground-route-key"

EXPECTED_TYPES = {
    "/": "text/html; charset=utf-8",
    "/static/playground.js": "text/javascript; charset=utf-8",
    "/static/playground.css": "text/css; charset=utf-8",
    "/static/favicon.svg": "image/svg+xml",
}


@pytest.fixture(scope="module")
def keyed(footnote_factory: StartFootnote) -> str:
    """A Footnote that requires an API key (the playground itself stays public)."""
    return footnote_factory(with_upstream=False, api_keys=(KEY,))


@pytest.mark.parametrize("path", sorted(EXPECTED_TYPES))
def test_files_are_public_with_their_types_and_a_strict_csp(keyed: str, path: str) -> None:
    r = httpx.get(keyed + path, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == EXPECTED_TYPES[path]
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert csp.split(";")[0].strip() == "default-src 'self'"
    assert "unsafe" not in csp


def test_api_still_needs_the_key(keyed: str) -> None:
    r = httpx.get(f"{keyed}/v1/models", timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    ok = httpx.get(f"{keyed}/v1/models", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert ok.status_code == 200


def test_page_loads_nothing_from_elsewhere(keyed: str) -> None:
    html = httpx.get(keyed + "/", timeout=10).text
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    assert refs, "the page references its script and styles"
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert "<script>" not in html and "style=" not in html  # nothing inline for the CSP to block


@pytest.mark.parametrize(
    "raw_path",
    [
        "/static/..%2Fserver.py",
        "/static/%2e%2e%2fserver.py",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2E%2E/api/playground.py",
        "/static/../server.py",
        "/static/index.html",  # the page lives at / only
        "/static/playground.js%00.txt",
        "/static/PLAYGROUND.JS",
        "/static/",
        "/static/nope.js",
    ],
)
def test_no_other_file_is_served(keyed: str, raw_path: str) -> None:
    with httpx.Client(base_url=keyed, timeout=10) as client:
        # Send the path exactly as written: no client-side dot-segment normalisation.
        request = client.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=raw_path.encode())
        r = client.send(request)
    assert r.status_code == 404, (raw_path, r.status_code)
    body = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "import" not in r.text and "[project]" not in r.text


def test_every_shipped_static_file_is_allow_listed() -> None:
    shipped = {p.name for p in resources.files("app").joinpath("static").iterdir() if p.is_file()}
    assert shipped == set(STATIC_FILES)
