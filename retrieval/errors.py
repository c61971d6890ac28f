"""Retrieval's own exceptions; ``app.errors`` maps them to HTTP answers."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base class of every error raised by the retrieval package."""


class SearchUnavailable(RetrievalError):
    """The search provider could not be reached or answered with an error."""


class FetchError(RetrievalError):
    """A page could not be fetched; ``reason`` is a short machine-readable code.

    Reasons: ``blocked_address``, ``bad_url``, ``dns``, ``connect``, ``timeout``,
    ``too_large``, ``content_type``, ``http_status``, ``redirects``, ``decoding``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BlockedAddress(FetchError):
    """The URL resolves to an address the fetcher may not reach (SSRF guard)."""

    def __init__(self, message: str) -> None:
        super().__init__("blocked_address", message)


class SearchRateLimited(SearchUnavailable):
    """The search provider refused for now (HTTP 429 or its own rate limit).

    ``retry_after`` is how many seconds the provider asked us to wait, or ``None`` when it
    did not say; ``FallbackProvider`` uses it to skip the provider meanwhile.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
