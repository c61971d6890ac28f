"""Suite-wide fixtures: the anyio backend and the loopback fakes (``tests.fakes.fixtures``)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = [
    "tests.fakes.fixtures",
    "tests.fakes.footnote_server",
    "tests.fakes.redis_server",
]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the server uses."""
    return "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    """Keep the suite's files out of the user's home: the default index lives in a temp dir.

    Set before any test (and any server or CLI subprocess a test starts) reads it.
    """
    data_home = tempfile.mkdtemp(prefix="footnote-tests-xdg-")
    os.environ["XDG_DATA_HOME"] = data_home
    config.add_cleanup(lambda: shutil.rmtree(data_home, ignore_errors=True))
