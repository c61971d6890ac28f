"""Search filters we enforce ourselves, after search: domains and recency.

Providers differ in which filters they honour and how; applying them to the hits (and
again to the extracted documents, whose dates are better known) makes the result the same
whichever provider answered.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import msgspec

MAX_DOMAINS = 20
RECENCY = {"hour": 1 / 24, "day": 1, "week": 7, "month": 31, "year": 366}


class FilterError(ValueError):
    """A filter value is malformed; the message says why (shown to the client)."""


class SearchFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Allowed or denied domains (never both) and a maximum age in days."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    max_age_days: float | None = None

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return bool(self.allow or self.deny or self.max_age_days is not None)


def _domain(entry: str) -> str:
    value = entry.strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    value = value.split("/", 1)[0].removeprefix("www.").strip(".")
    if not value or " " in value or ("." not in value and value != "localhost"):
        raise FilterError(f"'{entry}' is not a domain name")
    return value


def parse_filters(domains: list[str] | None, recency: str | None) -> SearchFilters:
    """Parse Perplexity-style filters: ``x.com`` allows, ``-x.com`` denies, at most 20."""
    allow: list[str] = []
    deny: list[str] = []
    for entry in domains or []:
        if not isinstance(entry, str) or not entry.strip():
            raise FilterError("search_domain_filter entries must be non-empty strings")
        stripped = entry.strip()
        if stripped.startswith("-"):
            deny.append(_domain(stripped[1:]))
        else:
            allow.append(_domain(stripped))
    if len(allow) + len(deny) > MAX_DOMAINS:
        raise FilterError(f"search_domain_filter takes at most {MAX_DOMAINS} domains")
    if allow and deny:
        raise FilterError(
            "search_domain_filter cannot mix allowed and denied ('-') domains in one request"
        )
    max_age = None
    if recency is not None:
        if recency not in RECENCY:
            raise FilterError(
                f"search_recency_filter must be one of {', '.join(RECENCY)}, got '{recency}'"
            )
        max_age = RECENCY[recency]
    return SearchFilters(allow=tuple(allow), deny=tuple(deny), max_age_days=max_age)


def _matches(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def domain_allowed(url: str, filters: SearchFilters) -> bool:
    """Whether ``url``'s host passes the allow/deny lists (subdomains included)."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    if filters.allow and not _matches(host, filters.allow):
        return False
    return not (filters.deny and _matches(host, filters.deny))


def recent_enough(
    published: str | None, filters: SearchFilters, *, today: date | None = None
) -> bool:
    """Whether a page dated ``published`` (YYYY-MM-DD) is within the recency window.

    An unknown date passes: the filter is enforced against the page's date when known.
    """
    if filters.max_age_days is None or not published:
        return True
    try:
        when = date.fromisoformat(published[:10])
    except ValueError:
        return True
    now = today or datetime.now(UTC).date()
    # Dates are day-precise, so "hour" and "day" both keep today's pages.
    return when >= now - timedelta(days=max(1, int(filters.max_age_days)))
