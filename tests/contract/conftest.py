"""Contract tests talk to Footnote servers whose every response is checked against OpenAI's schemas.

``footnote_factory``, ``footnote`` and ``footnote_extractive`` are redefined here (same settings
as ``tests/fakes/footnote_server.py``) with the app wrapped in a ``SchemaTap``; after each test,
any response, chunk or error it received that breaks OpenAI's schema fails it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.openai_schema import SchemaLog, SchemaTap
from tests.fakes.footnote_server import StartFootnote, serve_footnotes


@pytest.fixture(scope="session")
def schema_log() -> SchemaLog:
    """Everything the schema taps checked in this session."""
    return SchemaLog()


@pytest.fixture(scope="session")
def footnote_factory(searxng: Any, upstream: Any, schema_log: SchemaLog) -> Iterator[StartFootnote]:
    """Start schema-checked Footnote servers with settings overrides; stopped at the end."""
    yield from serve_footnotes(searxng, upstream, wrap=lambda app: SchemaTap(app, schema_log))


@pytest.fixture(scope="session")
def footnote(footnote_factory: StartFootnote) -> str:
    """A schema-checked Footnote wired to the fake search, simulated web and fake upstream."""
    return footnote_factory()


@pytest.fixture(scope="session")
def footnote_extractive(footnote_factory: StartFootnote) -> str:
    """A schema-checked Footnote with no upstream (extractive answers)."""
    return footnote_factory(with_upstream=False)


@pytest.fixture(autouse=True)
def _responses_follow_openai_schemas(schema_log: SchemaLog) -> Iterator[None]:
    before = len(schema_log.problems)
    yield
    problems = schema_log.problems[before:]
    assert not problems, "responses broke OpenAI's schemas:\n" + "\n".join(problems)
