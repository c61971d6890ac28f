"""Settings come from FOOTNOTE_* variables, with OPENAI_* as upstream fallbacks."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError


def test_defaults_are_offline() -> None:
    s = Settings.from_env({})
    assert s.search_provider == "local"
    assert s.index_path is None
    assert s.upstream_base_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.api_keys == ()
    assert s.fetch_allow_private == ()


def test_everything_from_env() -> None:
    s = Settings.from_env(
        {
            "FOOTNOTE_HOST": "0.0.0.0",
            "FOOTNOTE_PORT": "9000",
            "FOOTNOTE_SEARCH_PROVIDER": "searxng",
            "FOOTNOTE_SEARXNG_URL": "http://searx:8080",
            "FOOTNOTE_UPSTREAM_BASE_URL": "http://llm/v1",
            "FOOTNOTE_UPSTREAM_API_KEY": "k",
            "FOOTNOTE_UPSTREAM_MODEL": "m",
            "FOOTNOTE_API_KEYS": "a, b ,",
            "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8,10.0.0.0/8",
        }
    )
    assert (s.host, s.port, s.search_provider) == ("0.0.0.0", 9000, "searxng")
    assert s.searxng_url == "http://searx:8080"
    assert (s.upstream_base_url, s.upstream_api_key, s.upstream_model) == (
        "http://llm/v1",
        "k",
        "m",
    )
    assert s.api_keys == ("a", "b")
    assert s.fetch_allow_private == ("127.0.0.0/8", "10.0.0.0/8")


def test_openai_variables_are_fallbacks() -> None:
    s = Settings.from_env({"OPENAI_BASE_URL": "http://o/v1", "OPENAI_API_KEY": "sk"})
    assert (s.upstream_base_url, s.upstream_api_key) == ("http://o/v1", "sk")
    s = Settings.from_env(
        {"OPENAI_BASE_URL": "http://o/v1", "FOOTNOTE_UPSTREAM_BASE_URL": "http://f/v1"}
    )
    assert s.upstream_base_url == "http://f/v1"


@pytest.mark.parametrize(
    "env",
    [
        {"FOOTNOTE_PORT": "eighty"},
        {"FOOTNOTE_PORT": "-1"},
        {"FOOTNOTE_SEARCH_PROVIDER": "searxng"},
        {"FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8,not-a-cidr"},
        {"FOOTNOTE_UPSTREAM_TIMEOUT": "0"},
    ],
)
def test_bad_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_provider_chain_and_keys() -> None:
    s = Settings.from_env(
        {"FOOTNOTE_SEARCH_PROVIDER": "brave, duckduckgo", "FOOTNOTE_BRAVE_API_KEY": "bk"}
    )
    assert s.search_provider == "brave,duckduckgo"
    assert s.brave_api_key == "bk"
    with pytest.raises(SettingsError, match="FOOTNOTE_TAVILY_API_KEY"):
        Settings.from_env({"FOOTNOTE_SEARCH_PROVIDER": "tavily"})
    with pytest.raises(SettingsError, match="unknown search provider"):
        Settings.from_env({"FOOTNOTE_SEARCH_PROVIDER": "bing"})
    with pytest.raises(SettingsError, match="twice"):
        Settings.from_env({"FOOTNOTE_SEARCH_PROVIDER": "duckduckgo,duckduckgo"})
