"""One frozen ``Settings`` object, built once from the environment (``FOOTNOTE_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from retrieval.net.addresses import parse_networks
from retrieval.search.registry import provider_names


class SettingsError(ValueError):
    """A configuration value in the environment is malformed."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """Every knob of the service. Defaults give an offline server on 127.0.0.1:8000."""

    host: str = "127.0.0.1"
    port: int = 8000
    search_provider: str = "bundled"
    searxng_url: str | None = None
    brave_api_key: str | None = None
    tavily_api_key: str | None = None
    exa_api_key: str | None = None
    upstream_base_url: str | None = None
    upstream_api_key: str | None = None
    upstream_model: str = "gpt-4o-mini"
    upstream_timeout_s: float = 60.0
    upstream_max_retries: int = 1
    api_keys: tuple[str, ...] = ()
    fetch_allow_private: tuple[str, ...] = ()
    fetch_timeout_s: float = 5.0
    fetch_max_bytes: int = 5_000_000
    search_timeout_s: float = 10.0
    max_request_bytes: int = 1_000_000
    extract_workers: int = 2
    cache_ttl_s: float = 3600.0
    public_url: str | None = None

    @property
    def base_url(self) -> str:
        """Where clients reach this server (used for links to bundled pages)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FOOTNOTE_*`` variables (``OPENAI_*`` as upstream fallbacks)."""
        e = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = e.get(name, "").strip()
            return value or None

        def number(name: str, default: float, kind: type[int] | type[float]) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None
            if value <= 0:
                raise SettingsError(f"{name} must be positive, got {raw!r}")
            return value

        def count(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            if not raw.isdigit():
                raise SettingsError(f"{name} must be a whole number >= 0, got {raw!r}")
            return int(raw)

        def csv(name: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in (get(name) or "").split(",") if part.strip())

        provider = (get("FOOTNOTE_SEARCH_PROVIDER") or "bundled").lower().replace(" ", "")
        searxng = get("FOOTNOTE_SEARXNG_URL")
        try:
            names = provider_names(provider)
        except ValueError as exc:
            raise SettingsError(f"FOOTNOTE_SEARCH_PROVIDER: {exc}") from None
        if "searxng" in names and not searxng:
            raise SettingsError("FOOTNOTE_SEARCH_PROVIDER=searxng needs FOOTNOTE_SEARXNG_URL")
        for name in ("brave", "tavily", "exa"):
            if name in names and not get(f"FOOTNOTE_{name.upper()}_API_KEY"):
                raise SettingsError(
                    f"FOOTNOTE_SEARCH_PROVIDER={name} needs FOOTNOTE_{name.upper()}_API_KEY"
                )
        allow_private = csv("FOOTNOTE_FETCH_ALLOW_PRIVATE")
        try:
            parse_networks(allow_private)
        except ValueError as exc:
            raise SettingsError(f"FOOTNOTE_FETCH_ALLOW_PRIVATE: {exc}") from None
        return cls(
            host=get("FOOTNOTE_HOST") or "127.0.0.1",
            port=int(number("FOOTNOTE_PORT", 8000, int)),
            search_provider=provider,
            searxng_url=searxng,
            brave_api_key=get("FOOTNOTE_BRAVE_API_KEY"),
            tavily_api_key=get("FOOTNOTE_TAVILY_API_KEY"),
            exa_api_key=get("FOOTNOTE_EXA_API_KEY"),
            upstream_base_url=get("FOOTNOTE_UPSTREAM_BASE_URL") or get("OPENAI_BASE_URL"),
            upstream_api_key=get("FOOTNOTE_UPSTREAM_API_KEY") or get("OPENAI_API_KEY"),
            upstream_model=get("FOOTNOTE_UPSTREAM_MODEL") or "gpt-4o-mini",
            upstream_timeout_s=number("FOOTNOTE_UPSTREAM_TIMEOUT", 60.0, float),
            api_keys=csv("FOOTNOTE_API_KEYS"),
            fetch_allow_private=allow_private,
            fetch_timeout_s=number("FOOTNOTE_FETCH_TIMEOUT", 5.0, float),
            fetch_max_bytes=int(number("FOOTNOTE_FETCH_MAX_BYTES", 5_000_000, int)),
            search_timeout_s=number("FOOTNOTE_SEARCH_TIMEOUT", 10.0, float),
            max_request_bytes=int(number("FOOTNOTE_MAX_REQUEST_BYTES", 1_000_000, int)),
            public_url=get("FOOTNOTE_PUBLIC_URL"),
            extract_workers=count("FOOTNOTE_EXTRACT_WORKERS", 2),
            cache_ttl_s=float(count("FOOTNOTE_CACHE_TTL", 3600)),
        )
