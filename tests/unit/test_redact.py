"""The start-up log line never carries credentials from the upstream URL."""

from __future__ import annotations

import pytest

from app.server import _redacted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@api.example.com:8443/v1", "https://api.example.com:8443/v1"),
        ("http://token@[::1]:11434/v1", "http://[::1]:11434/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        (None, None),
    ],
)
def test_redacted(url: str | None, expected: str | None) -> None:
    assert _redacted(url) == expected
