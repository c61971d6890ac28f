"""What ``footnote ask`` sends: the chat completion request, and the schema file it reads.

Light on purpose (no app, no SDKs): a bad schema file is reported before the app is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec

from app.cli_errors import CliError


class AskOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What ``footnote ask`` was asked for."""

    question: str
    model: str = "base"
    schema: dict[str, Any] | None = None
    json: bool = False


def load_schema(path: str) -> dict[str, Any]:
    """The ``json_schema`` object for ``response_format`` from a JSON Schema file.

    The file holds either a JSON Schema (named by its ``title`` or the file name) or an
    OpenAI ``json_schema`` object (``{"name": ..., "schema": {...}}``), sent as it is.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise CliError(f"schema file not found: {path}", 2) from None
    except OSError as exc:
        raise CliError(f"cannot read schema file {path}: {exc.strerror or exc}", 2) from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise CliError(f"schema file {path} is not valid JSON: {exc}", 2) from None
    if not isinstance(doc, dict):
        raise CliError(f"schema file {path} must hold a JSON object", 2)
    if isinstance(doc.get("schema"), dict) and "type" not in doc:
        return {**doc, "name": _schema_name(doc.get("name"), file)}
    return {"name": _schema_name(doc.get("title"), file), "schema": doc}


def _schema_name(name: object, file: Path) -> str:
    """A name OpenAI accepts (``[A-Za-z0-9_-]{1,64}``) from the schema's own or the file's."""
    base = name if isinstance(name, str) and name.strip() else file.stem
    return re.sub(r"[^A-Za-z0-9_-]+", "_", base.strip())[:64] or "answer"


def request_body(options: AskOptions, *, stream: bool) -> bytes:
    """The chat completion request for ``options``, as a client would send it."""
    body: dict[str, Any] = {
        "model": options.model,
        "messages": [{"role": "user", "content": options.question}],
    }
    if options.schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": options.schema}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()
