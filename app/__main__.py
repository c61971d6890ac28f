"""``python -m app``: serve Footnote with the configuration taken from the environment.

``FOOTNOTE_WORKERS=N`` (N > 1) runs N uvicorn worker processes on one listening socket; each
builds its own app from the same settings (``worker_app``). Point them at one Redis
(``FOOTNOTE_REDIS_URL``) so they share the page cache and the rate limits.
"""

from __future__ import annotations

import logging.config
import os
import sys
from typing import TYPE_CHECKING, Any

import msgspec
import uvicorn

from app.obs.logs import logging_config, resolve_format
from app.obs.metrics import multiprocess_dir
from app.settings import Settings, SettingsError

if TYPE_CHECKING:
    from litestar import Litestar

# How ``serve`` hands its exact settings to worker processes (which uvicorn starts afresh):
# the settings as JSON. Internal; not a configuration knob.
SETTINGS_ENV = "FOOTNOTE_WORKER_SETTINGS"


def worker_app() -> Litestar:
    """The app of one worker process: the settings ``serve`` passed on, else the environment."""
    from app.server import create_app  # the supervisor process never needs the app

    raw = os.environ.get(SETTINGS_ENV)
    settings = msgspec.json.decode(raw, type=Settings) if raw else Settings.from_env()
    return create_app(settings)


def serve(settings: Settings) -> None:
    """Serve until interrupted: in this process, or in ``settings.workers`` worker processes.

    SIGINT/SIGTERM stop the server gracefully (open requests get 10 s to finish); with
    workers, uvicorn's supervisor stops them all and restarts any that dies meanwhile.
    """
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        # Workers apply this themselves; ``footnote.access`` replaces uvicorn's access log.
        "log_config": logging_config(resolve_format(settings.log_format), settings.log_level),
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers <= 1:
        from app.server import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # uvicorn re-imports the app in each worker: it needs an import string and a factory.
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    # Metrics of every worker add up in /metrics (prometheus_client's multiprocess mode).
    with multiprocess_dir(settings.workers):
        uvicorn.run("app.__main__:worker_app", factory=True, workers=settings.workers, **options)


def main() -> None:
    """Read ``FOOTNOTE_*`` settings and serve until interrupted."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"footnote: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.config.dictConfig(
        logging_config(resolve_format(settings.log_format), settings.log_level)
    )
    serve(settings)


if __name__ == "__main__":
    main()
