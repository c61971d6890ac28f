"""One frozen ``Settings`` object, built once from the environment (``FOOTNOTE_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from app.rates import parse_rate
from retrieval.net.addresses import parse_networks
from retrieval.search.registry import provider_names


class SettingsError(ValueError):
    """A configuration value in the environment is malformed."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """Every knob of the service. Defaults give an offline server on 127.0.0.1:8000."""

    host: str = "127.0.0.1"
    port: int = 8000
    # "local" = the on-disk index (seeded with the bundled corpus when nothing is configured).
    search_provider: str = "local"
    searxng_url: str | None = None
    brave_api_key: str | None = None
    tavily_api_key: str | None = None
    exa_api_key: str | None = None
    upstream_base_url: str | None = None
    upstream_api_key: str | None = None
    upstream_model: str = "gpt-4o-mini"
    # Per-tier upstream models, e.g. (("speed", "gpt-4o-mini"), ("core", "gpt-4o")).
    tier_models: tuple[tuple[str, str], ...] = ()
    upstream_timeout_s: float = 60.0
    upstream_max_retries: int = 1
    upstream_retry_max_wait_s: float = 8.0
    upstream_fallback: str = "extractive"
    api_keys: tuple[str, ...] = ()
    fetch_allow_private: tuple[str, ...] = ()
    fetch_timeout_s: float = 5.0
    fetch_max_bytes: int = 5_000_000
    search_timeout_s: float = 10.0
    max_request_bytes: int = 1_000_000
    extract_workers: int = 2
    cache_ttl_s: float = 3600.0
    public_url: str | None = None
    # FOOTNOTE_INDEX_PATH; None = retrieval.index.default_index_path() (shared with the CLI).
    index_path: str | None = None
    # Observability: log format (json|text|auto), level, /metrics (on|public|off), /readyz.
    log_format: str = "auto"
    log_level: str = "INFO"
    metrics: str = "on"
    ready_timeout_s: float = 2.0
    # Scale-out: shared cache and rate limits in Redis, worker processes, limits per request.
    redis_url: str | None = None
    rate_limit: int = 0
    rate_limit_period_s: float = 60.0
    request_timeout_s: float = 120.0
    workers: int = 1

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

        provider = (get("FOOTNOTE_SEARCH_PROVIDER") or "local").lower().replace(" ", "")
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
        tier_models = _tier_models(csv("FOOTNOTE_TIER_MODELS"))
        fallback = (get("FOOTNOTE_UPSTREAM_FALLBACK") or "extractive").lower()
        if fallback not in ("extractive", "error"):
            raise SettingsError(
                f"FOOTNOTE_UPSTREAM_FALLBACK must be 'extractive' or 'error', got {fallback!r}"
            )
        redis_url = get("FOOTNOTE_REDIS_URL")
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "FOOTNOTE_REDIS_URL must start with redis://, rediss:// or unix://, "
                f"got {redis_url!r}"
            )
        try:
            rate_limit, rate_period = parse_rate(get("FOOTNOTE_RATE_LIMIT") or "0")
        except ValueError as exc:
            raise SettingsError(f"FOOTNOTE_RATE_LIMIT: {exc}") from None
        workers = count("FOOTNOTE_WORKERS", 1)
        if not 1 <= workers <= 64:
            raise SettingsError(f"FOOTNOTE_WORKERS must be between 1 and 64, got {workers}")
        log_format = (get("FOOTNOTE_LOG_FORMAT") or "auto").lower()
        if log_format not in ("json", "text", "auto"):
            raise SettingsError(
                f"FOOTNOTE_LOG_FORMAT must be json, text or auto, got {log_format!r}"
            )
        log_level = (get("FOOTNOTE_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"FOOTNOTE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
            )
        metrics = (get("FOOTNOTE_METRICS") or "on").lower()
        if metrics not in ("on", "public", "off"):
            raise SettingsError(f"FOOTNOTE_METRICS must be on, public or off, got {metrics!r}")
        index_path = get("FOOTNOTE_INDEX_PATH")
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
            tier_models=tier_models,
            upstream_timeout_s=number("FOOTNOTE_UPSTREAM_TIMEOUT", 60.0, float),
            upstream_max_retries=count("FOOTNOTE_UPSTREAM_MAX_RETRIES", 1),
            upstream_retry_max_wait_s=number("FOOTNOTE_UPSTREAM_RETRY_MAX_WAIT", 8.0, float),
            upstream_fallback=fallback,
            api_keys=csv("FOOTNOTE_API_KEYS"),
            fetch_allow_private=allow_private,
            fetch_timeout_s=number("FOOTNOTE_FETCH_TIMEOUT", 5.0, float),
            fetch_max_bytes=int(number("FOOTNOTE_FETCH_MAX_BYTES", 5_000_000, int)),
            search_timeout_s=number("FOOTNOTE_SEARCH_TIMEOUT", 10.0, float),
            max_request_bytes=int(number("FOOTNOTE_MAX_REQUEST_BYTES", 1_000_000, int)),
            public_url=get("FOOTNOTE_PUBLIC_URL"),
            index_path=os.path.expanduser(index_path) if index_path else None,
            log_format=log_format,
            log_level=log_level,
            metrics=metrics,
            ready_timeout_s=number("FOOTNOTE_READY_TIMEOUT", 2.0, float),
            extract_workers=count("FOOTNOTE_EXTRACT_WORKERS", 2),
            cache_ttl_s=float(count("FOOTNOTE_CACHE_TTL", 3600)),
            redis_url=redis_url,
            rate_limit=rate_limit,
            rate_limit_period_s=rate_period,
            request_timeout_s=number("FOOTNOTE_REQUEST_TIMEOUT", 120.0, float),
            workers=workers,
        )


def _tier_models(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``FOOTNOTE_TIER_MODELS`` (``speed=gpt-4o-mini,core=gpt-4o``) as checked pairs."""
    from app.tiers import TIERS

    out: list[tuple[str, str]] = []
    for pair in pairs:
        tier, sep, model = (part.strip() for part in pair.partition("="))
        if not sep or not tier or not model:
            raise SettingsError(f"FOOTNOTE_TIER_MODELS entries are tier=model, got {pair!r}")
        if tier not in TIERS:
            raise SettingsError(
                f"FOOTNOTE_TIER_MODELS: unknown tier {tier!r}; tiers are {', '.join(TIERS)}"
            )
        out.append((tier, model))
    return tuple(out)
