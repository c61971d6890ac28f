"""The deployment files, checked without a Docker engine: docker-compose.yml and Dockerfile.

The compose file is parsed as YAML and its Footnote environment, with compose's
``${VAR:-default}`` interpolation applied as ``docker compose`` would with nothing set, must
be a configuration ``Settings.from_env`` accepts, pointing at services the file defines.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolate(value: Any) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` with no variable set: the default, or ''."""
    return _VAR.sub(lambda m: m.group(2) or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _interpolate(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"footnote", "searxng", "redis"} <= set(services)
    deps = _depends_on(services["footnote"])
    assert set(deps) >= {"searxng", "redis"}
    # Footnote starts once Redis answers, so the health check it waits on must exist.
    assert deps["redis"] == "service_healthy"
    check = services["redis"]["healthcheck"]["test"]
    assert "redis-cli" in check and "ping" in check


def test_redis_is_a_cache_not_a_database(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7") and redis["image"].endswith("-alpine")
    command = redis["command"]
    args = command if isinstance(command, list) else shlex.split(command)
    assert args[0] == "redis-server"
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    assert "--maxmemory" in args and "volatile-lru" in args  # our keys all carry a TTL
    assert "ports" not in redis  # internal only: nothing outside compose reaches it


def test_footnote_environment_is_valid_and_wired(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = _environment(services["footnote"])
    settings = Settings.from_env(env)
    assert settings.workers == 4
    assert settings.search_provider == "searxng"
    for url, service, port in (
        (settings.redis_url, "redis", 6379),
        (settings.searxng_url, "searxng", 8080),
    ):
        parts = urlsplit(url or "")
        assert parts.hostname == service and service in services
        assert parts.port == port
    assert settings.rate_limit == 0  # opt-in: FOOTNOTE_RATE_LIMIT
    # The port mapping reaches the port the container serves on.
    assert any(str(p).endswith(f":{settings.port}") for p in services["footnote"]["ports"])


def test_footnote_environment_overrides(compose: dict[str, Any]) -> None:
    raw = compose["services"]["footnote"]["environment"]
    assert raw["FOOTNOTE_RATE_LIMIT"] == "${FOOTNOTE_RATE_LIMIT:-0}"
    assert "${FOOTNOTE_REQUEST_TIMEOUT" in raw["FOOTNOTE_REQUEST_TIMEOUT"]


def test_dockerfile_builds_what_compose_runs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    # Only the final stage is the image.
    stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    # httpx and the openai SDK verify TLS with the OS trust store.
    assert any(
        line.startswith("RUN") and "apt-get install" in line and "ca-certificates" in line
        for line in stage
    )
    assert any(line.startswith("COPY") and " app " in f"{line} " for line in stage)
    assert any(line.startswith("COPY") and " retrieval " in f"{line} " for line in stage)
    assert any(line.startswith("RUN") and "pip install" in line for line in stage)
    assert 'CMD ["python", "-m", "app"]' in stage
    assert any("FOOTNOTE_HOST=0.0.0.0" in line for line in stage if line.startswith("ENV"))
    # ``pip install .`` brings the Redis client with the runtime dependencies.
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"redis\b", dep) for dep in deps)
