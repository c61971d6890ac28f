"""Pytest fixtures that start the loopback fakes once per session and reset them per test.

Loaded by ``tests/conftest.py`` as a plugin. ``simweb``, ``searxng`` and ``upstream`` are
session-scoped (start-up is paid once); every fake a session has started is ``reset()`` after
each test by an autouse fixture, so a test may change ``fail_with``, ``latency``, ``script`` ...
freely without leaking it into the next test. Fakes never requested are never started.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import Question, SimulatedWeb, load_questions
from tests.fakes.upstream import FakeUpstream


class _Resettable(Protocol):
    def reset(self) -> None: ...


_STARTED = pytest.StashKey[list[_Resettable]]()


def _register(config: pytest.Config, fake: _Resettable) -> None:
    config.stash.setdefault(_STARTED, []).append(fake)


@pytest.fixture(scope="session")
def simweb(pytestconfig: pytest.Config) -> Iterator[SimulatedWeb]:
    """The simulated web, serving the corpus on 127.0.0.2-.6 (one port; site 6 for test pages)."""
    with SimulatedWeb() as web:
        _register(pytestconfig, web)
        yield web


@pytest.fixture(scope="session")
def searxng(simweb: SimulatedWeb, pytestconfig: pytest.Config) -> Iterator[FakeSearxng]:
    """A SearXNG JSON endpoint on 127.0.0.1 over ``simweb`` (``searxng.base_url``)."""
    with FakeSearxng(simweb) as search:
        _register(pytestconfig, search)
        yield search


@pytest.fixture(scope="session")
def upstream(pytestconfig: pytest.Config) -> Iterator[FakeUpstream]:
    """The fake OpenAI-compatible LLM on 127.0.0.1 (``upstream.base_url`` ends in ``/v1``)."""
    with FakeUpstream() as llm:
        _register(pytestconfig, llm)
        yield llm


@pytest.fixture(scope="session")
def questions() -> list[Question]:
    """The corpus questions (``questions.jsonl``)."""
    return load_questions()


@pytest.fixture(autouse=True)
def _reset_fakes(pytestconfig: pytest.Config) -> Iterator[None]:
    """After each test, reset every fake this session started (modes, logs, extra pages)."""
    yield
    for fake in pytestconfig.stash.get(_STARTED, []):
        fake.reset()
