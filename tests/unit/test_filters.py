"""Domain and recency filters: Perplexity syntax, enforced by us."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.filters import FilterError, domain_allowed, parse_filters, recent_enough


def test_allow_list_includes_subdomains() -> None:
    f = parse_filters(["wikipedia.org", "https://www.nature.com/articles"], None)
    assert f.allow == ("wikipedia.org", "nature.com")
    assert domain_allowed("https://en.wikipedia.org/wiki/X", f)
    assert domain_allowed("https://www.nature.com/a", f)
    assert not domain_allowed("https://notwikipedia.org/x", f)
    assert not domain_allowed("https://example.com/", f)


def test_deny_list() -> None:
    f = parse_filters(["-pinterest.com", "-x.com"], None)
    assert f.deny == ("pinterest.com", "x.com")
    assert not domain_allowed("https://www.pinterest.com/p", f)
    assert domain_allowed("https://example.com/", f)


@pytest.mark.parametrize(
    ("domains", "recency", "needle"),
    [
        (["a.com", "-b.com"], None, "cannot mix"),
        ([f"d{i}.com" for i in range(21)], None, "at most 20"),
        (["not a domain"], None, "not a domain"),
        ([""], None, "non-empty"),
        (None, "decade", "must be one of"),
    ],
)
def test_bad_filters(domains: list[str] | None, recency: str | None, needle: str) -> None:
    with pytest.raises(FilterError, match=needle):
        parse_filters(domains, recency)


def test_recency_uses_the_page_date_when_known() -> None:
    f = parse_filters(None, "week")
    today = date(2026, 11, 22)
    assert recent_enough("2026-11-20", f, today=today)
    assert not recent_enough("2026-10-01", f, today=today)
    assert recent_enough(None, f, today=today)
    assert recent_enough("2001-01-01", parse_filters(None, None), today=today)
    assert recent_enough("2026-11-22", parse_filters(None, "hour"), today=today)
    assert not recent_enough("2026-11-20", parse_filters(None, "day"), today=today)
