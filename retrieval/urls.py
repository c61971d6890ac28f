"""URL identity: the one canonical form used for deduplication and as cache key.

It lives apart from ``pipeline`` so that the cache (which the pipeline imports) can key
entries the same way without an import cycle.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def canonical_url(url: str) -> str:
    """A URL's identity for deduplication: lower-case scheme/host, no fragment or default port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((scheme, host, path, parts.query, ""))
