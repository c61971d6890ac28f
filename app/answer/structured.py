"""Structured output (``response_format`` ``json_schema``/``json_object``), a basis per field.

The upstream is asked for one JSON object (the client's schema goes in the system turn and,
as given, in the upstream's own ``response_format``), with ``[n]`` source markers inside the
string values that state facts. Footnote then:

1. parses the output (a stray Markdown code fence is tolerated);
2. takes the markers out of every string, remembering which value cited what, so the object
   the client gets is clean and schema-valid;
3. validates it against the schema (JSON Schema draft 2020-12) and, when it fails, asks the
   upstream once to repair it, quoting the validation errors; a second failure is a 502;
4. attributes every leaf value to the sources that support it (markers checked and corrected
   as for prose, unmarked values matched against the evidence) and builds one basis entry per
   leaf path: ``name`` for a top-level field, ``items.0`` for an array element and dotted
   paths such as ``author.born.year`` for nested fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import msgspec
from jsonschema.exceptions import SchemaError

from app.answer.correct import MIN_WORDS, SupportIndex
from app.answer.sources import Source
from app.errors import ApiError
from retrieval.text import tokenize

_MARKERS = re.compile(r"[ \t]*((?:\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+)")
_NUMBER = re.compile(r"\d{1,3}")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.S)
_MAX_ERRORS = 5


class StructuredFormat(msgspec.Struct, frozen=True, kw_only=True):
    """What the client asked for: any JSON object, or one matching ``schema``."""

    kind: str  # "json_object" or "json_schema"
    name: str = "response"
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict)


class Leaf(msgspec.Struct, frozen=True, kw_only=True):
    """One scalar value of the output: its dotted path, text and the sources it cited."""

    path: str
    text: str
    key: str
    numeric: bool
    sources: tuple[int, ...]
    # "value" (a string or number from the sources), "boolean" (a conclusion drawn from
    # the other fields' evidence) or "null" (no value given).
    kind: str = "value"


class StructuredError(Exception):
    """The upstream's output is not valid JSON for the requested format."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _invalid(param: str, message: str) -> ApiError:
    """The 400 for a malformed ``response_format``, naming the exact field."""
    return ApiError(400, message, param=param, code="invalid_value")


def parse_format(response_format: dict[str, Any] | None) -> StructuredFormat | None:
    """The requested structured format (``None`` for text); a malformed one is a 400."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return StructuredFormat(kind="json_object", raw={"type": "json_object"})
    if kind != "json_schema":
        raise _invalid(
            "response_format.type",
            f"response_format type {kind!r} is not supported; use 'text', 'json_object' or "
            "'json_schema'.",
        )
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise _invalid(
            "response_format.json_schema",
            "response_format of type 'json_schema' needs a 'json_schema' object.",
        )
    name = spec.get("name", "response")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise _invalid(
            "response_format.json_schema.name",
            "response_format.json_schema.name must be 1-64 letters, digits, '_' or '-'.",
        )
    schema_param = "response_format.json_schema.schema"
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise _invalid(schema_param, f"{schema_param} must be a JSON Schema object.")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise _invalid(
            schema_param, f"{schema_param} is not a valid JSON Schema: {exc.message}"
        ) from None
    if schema.get("type") not in (None, "object"):
        raise _invalid(schema_param, f"The top level of {schema_param} must be an object.")
    strict = spec.get("strict")
    return StructuredFormat(
        kind="json_schema",
        name=name,
        schema=schema,
        strict=strict if isinstance(strict, bool) else None,
        raw={"type": "json_schema", "json_schema": spec},
    )


def instructions(fmt: StructuredFormat) -> str:
    """The system-turn instructions for a structured answer."""
    lines = [
        "Reply with exactly one JSON object and nothing else: no prose, no Markdown, no code "
        "fences.",
        "Inside string values, put the number(s) of the source(s) supporting each fact right "
        'after it, like "Paris [1]". Numbers, booleans and nulls carry no markers.',
        "Use only what the sources say; where they do not give a value, use null if the "
        "schema allows it, or say in the string that the sources do not say.",
    ]
    if fmt.schema is not None:
        schema = json.dumps(fmt.schema, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"The object must validate against this JSON Schema: {schema}")
    return "\n".join(lines)


def repair_prompt(problems: list[str]) -> str:
    """The user turn asking the upstream to fix its invalid output."""
    listed = "\n".join(f"- {p}" for p in problems[:_MAX_ERRORS])
    return (
        "Your reply is not valid for the required format:\n"
        f"{listed}\n"
        "Reply again with only the corrected JSON object, keeping the source markers."
    )


def decode_output(text: str) -> Any:
    """The JSON value in the upstream's reply (a Markdown code fence around it is tolerated)."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        return json.loads(body)
    except ValueError as exc:
        raise StructuredError([f"the reply is not valid JSON ({exc})"]) from None


def strip_markers(
    value: Any, path: str = "", *, clean: Callable[[str], str] | None = None
) -> tuple[Any, list[Leaf]]:
    """The value with ``[n]`` markers removed from every string, and its scalar leaves.

    ``clean`` is applied to every string first (the output-safety link filter).
    """
    leaves: list[Leaf] = []

    def walk(node: Any, here: str, key: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{here}.{k}" if here else str(k), str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{here}.{i}" if here else str(i), key) for i, v in enumerate(node)]
        if isinstance(node, str):
            if clean is not None:
                node = clean(node)
            numbers: list[int] = []
            for match in _MARKERS.finditer(node):
                numbers += [int(n) for n in _NUMBER.findall(match.group(1))]
            plain = _MARKERS.sub("", node).strip() if numbers else node
            leaves.append(
                Leaf(
                    path=here,
                    text=plain,
                    key=key,
                    numeric=False,
                    sources=tuple(dict.fromkeys(numbers)),
                )
            )
            return plain
        if isinstance(node, bool) or node is None:
            kind = "null" if node is None else "boolean"
            text = "" if node is None else str(node).lower()
            leaves.append(Leaf(path=here, text=text, key=key, numeric=False, sources=(), kind=kind))
            return node
        if isinstance(node, int | float):
            leaves.append(Leaf(path=here, text=str(node), key=key, numeric=True, sources=()))
        return node

    return walk(value, path, ""), leaves


def validate(value: Any, fmt: StructuredFormat) -> list[str]:
    """The schema violations of ``value`` (empty when valid), most relevant first."""
    if not isinstance(value, dict):
        return [f"the reply must be a JSON object, not {type(value).__name__}"]
    if fmt.schema is None:
        return []
    validator = jsonschema.Draft202012Validator(fmt.schema)
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"at {where}: {error.message}")
        if len(problems) == _MAX_ERRORS:
            break
    return problems


def choose_leaf_sources(leaf: Leaf, index: SupportIndex, context: str) -> tuple[int, ...]:
    """The sources supporting one value: its checked markers, else the evidence that holds it.

    A value of at least ``MIN_WORDS`` content words is checked like a sentence of prose. A
    short value (a name, a date, a number) must appear whole in a source sentence; among the
    sources that hold it, the ones it cited win, then the sentence that also shares most of
    the field name and the question (``context``).
    """
    words = frozenset(tokenize(leaf.text))
    if not words:
        return ()
    if len(words) >= MIN_WORDS and not leaf.numeric:
        return index.choose(leaf.text, leaf.sources)
    hints = frozenset(tokenize(f"{leaf.key.replace('_', ' ')} {context}")) - words
    holders: list[tuple[int, int]] = []
    for number, sentences in index.sentences.items():
        best = -1
        for sentence in sentences:
            if words <= sentence:
                best = max(best, len(hints & sentence))
        if best >= 0:
            holders.append((best, number))
    if not holders:
        return ()
    cited = [n for _, n in holders if n in leaf.sources]
    if cited:
        return tuple(cited)
    holders.sort(key=lambda t: (-t[0], t[1]))
    return (holders[0][1],)


class LeafClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A leaf value with the sources it is attributed to after checking."""

    path: str
    text: str
    kind: str
    sources: tuple[int, ...]


def attributed_claims(
    leaves: list[Leaf], sources: list[Source], question: str, index: SupportIndex | None = None
) -> list[LeafClaim]:
    """Every leaf with its citations checked (booleans and nulls cite nothing themselves)."""
    index = index or SupportIndex(sources)
    return [
        LeafClaim(
            path=leaf.path,
            text=leaf.text,
            kind=leaf.kind,
            sources=choose_leaf_sources(leaf, index, question) if leaf.kind == "value" else (),
        )
        for leaf in leaves
    ]


def parent(path: str) -> str:
    """The dotted path of the object or array holding ``path`` (``""`` for top level)."""
    return path.rpartition(".")[0]
