"""The one error type of the ``footnote`` command line: reported as one line, then exit."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as one line; ``code`` is the exit status (2 usage/config, 1 runtime)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.code = code
