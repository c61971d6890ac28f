"""Where the local index lives by default: one path shared by the server and the CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INDEX_FILE_NAME = "index.sqlite3"


def default_index_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/footnote/index.sqlite3``, else ``~/.local/share/footnote/index.sqlite3``.

    ``FOOTNOTE_INDEX_PATH`` overrides this in both the server (``app.settings``) and the
    ``footnote index`` CLI; this function is the one place the default is written down.
    """
    e = os.environ if env is None else env
    data_home = e.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(data_home) if data_home and os.path.isabs(data_home) else None
    if base is None:
        base = Path(e.get("HOME", "").strip() or Path.home()) / ".local" / "share"
    return base / "footnote" / INDEX_FILE_NAME
