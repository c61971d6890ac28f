"""``GET /`` (the playground page) and ``GET /static/{name}`` (its script, styles and icon).

The page is plain HTML, CSS and JavaScript shipped as package data in ``app/static/``: no build
step, nothing loaded from the internet. It is public, like ``/healthz``; the API calls it makes
carry the key the user types in (kept in the browser's localStorage). Static files are served
from a fixed allow-list of names, so no path a client sends ever reaches the file system.
"""

from __future__ import annotations

from importlib import resources

from litestar import Response, get
from litestar.params import FromPath

from app.errors import ApiError

# Only these files are served; a name not listed here is a 404 whatever it contains. Litestar
# adds "; charset=utf-8" to the text types.
STATIC_FILES: dict[str, str] = {
    "index.html": "text/html",
    "playground.css": "text/css",
    "playground.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}

# The page may talk to this origin only: no inline script or style, no third-party anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Small files that change with the package: let the browser revalidate every time.
    "cache-control": "no-cache",
}


def read_static(name: str) -> bytes:
    """The bytes of an allow-listed static file (``KeyError`` for any other name)."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return resources.files("app").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response[bytes]:
    return Response(content=read_static(name), media_type=STATIC_FILES[name], headers=_HEADERS)


@get("/", sync_to_thread=False, opt={"public": True}, include_in_schema=False)
def playground() -> Response[bytes]:
    """The playground: ask a question, watch the answer stream in with its footnotes."""
    return _serve("index.html")


@get("/static/{name:str}", sync_to_thread=False, opt={"public": True}, include_in_schema=False)
def static_file(name: FromPath[str]) -> Response[bytes]:
    """One of the playground's files, by its exact allow-listed name."""
    if name not in STATIC_FILES or name == "index.html":
        raise ApiError(404, "No such static file.", code="not_found")
    return _serve(name)
