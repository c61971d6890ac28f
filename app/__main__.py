"""``python -m app``: serve Footnote with the configuration taken from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn

from app.server import create_app
from app.settings import Settings, SettingsError


def main() -> None:
    """Read ``FOOTNOTE_*`` settings and serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"footnote: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
