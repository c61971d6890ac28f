"""The fake upstream's structured answers: a JSON object shaped by the request's schema.

Like ``compose_answer`` for prose, it reads only the prompt: every string value is the
source sentence sharing the most content words with the question and the field's name,
verbatim, followed by `` [n]``; a number is the first number in the best sentence for the
field; booleans are ``true``; arrays hold one element; ``enum`` and ``const`` take their
first value. ``json_object`` without a schema gives ``{"answer": <prose answer>}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.text import content_words, split_sentences

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

Sources = list[tuple[int, str, str, str]]


def _best(words: set[str], sources: Sources) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None
    for number, _title, _url, text in sources:
        for sentence in split_sentences(text):
            score = len(content_words(sentence) & words)
            if score and (best is None or score > best[0]):
                best = (score, number, sentence)
    return None if best is None else (best[1], best[2])


def _value(schema: Any, key: str, question: str, sources: Sources) -> Any:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        options = schema.get(union)
        if isinstance(options, list):
            typed = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            return _value(typed[0] if typed else options[0], key, question, sources)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    words = content_words(f"{key.replace('_', ' ')} {question}")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _value(v, k, question, sources) for k, v in props.items()}
    if kind == "array":
        return [_value(schema.get("items", {}), key, question, sources)]
    if kind in ("integer", "number"):
        found = _best(words, sources)
        match = _NUMBER.search(found[1]) if found else None
        if match is None:
            return 0
        number = float(match.group(0))
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    found = _best(words, sources)
    return f"{found[1]} [{found[0]}]" if found else "The sources do not say."


def compose_json(body: dict[str, Any], question: str, sources: Sources, prose: str) -> str:
    """The JSON text answering ``question`` in the shape ``body['response_format']`` asks."""
    fmt = body.get("response_format") or {}
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        return json.dumps({"answer": prose})
    return json.dumps(_value(schema, "", question, sources))


def wants_json(body: dict[str, Any]) -> bool:
    """Whether the request asks for ``json_object`` or ``json_schema`` output."""
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
