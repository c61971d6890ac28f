"""Pytest fixtures: Footnote itself on a loopback port, wired to the loopback fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.server import create_app
from app.settings import Settings
from tests.fakes.server import ServerThread

StartFootnote = Callable[..., str]


def _settings(searxng_url: str, upstream_url: str | None, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "search_provider": "searxng",
        "searxng_url": searxng_url,
        "upstream_base_url": upstream_url,
        "upstream_api_key": "fake-key",
        "upstream_model": "fake-model",
        "upstream_max_retries": 0,
        "fetch_allow_private": ("127.0.0.0/8",),
        "fetch_timeout_s": 3.0,
    }
    base.update(overrides)
    return Settings(**base)


def serve_footnotes(
    searxng: Any, upstream: Any, wrap: Callable[[Any], Any] = lambda app: app
) -> Iterator[StartFootnote]:
    """Yield a starter of Footnote servers (settings overrides; ``wrap`` around each app).

    Every server it started is stopped when the generator resumes.
    """
    started: list[ServerThread] = []

    def start(*, with_upstream: bool = True, **overrides: Any) -> str:
        settings = _settings(
            searxng.base_url, upstream.base_url if with_upstream else None, **overrides
        )
        app: Any = create_app(settings)  # Litestar's ASGI signature is narrower than ASGIApp
        server = ServerThread(wrap(app), "127.0.0.1", lifespan=True, name="footnote")
        server.start(timeout=15)
        started.append(server)
        return server.base_url

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def footnote_factory(searxng: Any, upstream: Any) -> Iterator[StartFootnote]:
    """Start Footnote servers with given settings overrides; all are stopped at the end."""
    yield from serve_footnotes(searxng, upstream)


@pytest.fixture(scope="session")
def footnote(footnote_factory: StartFootnote) -> str:
    """Base URL of a Footnote wired to fake SearXNG, the simulated web and a fake upstream."""
    return footnote_factory()


@pytest.fixture(scope="session")
def footnote_extractive(footnote_factory: StartFootnote) -> str:
    """Base URL of a Footnote with no upstream configured (extractive answers)."""
    return footnote_factory(with_upstream=False)
