"""Suite-wide fixtures: the anyio backend and the loopback fakes (``tests.fakes.fixtures``)."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.footnote_server"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the server uses."""
    return "asyncio"
