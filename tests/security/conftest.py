"""Fixtures of the security tests: loopback servers and a recorder of dialled addresses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.servers import Dial, LoopbackServer, record_dials, serving


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A server on 127.0.0.1: the private target that must never be reached."""
    with serving("127.0.0.1") as srv:
        yield srv


@pytest.fixture
def allowed() -> Iterator[LoopbackServer]:
    """A server on 127.0.0.6: the one address tests allow with ``127.0.0.6/32``."""
    with serving("127.0.0.6") as srv:
        yield srv


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> list[Dial]:
    """Every (ip, port) the fetcher actually dials during the test."""
    return record_dials(monkeypatch)
