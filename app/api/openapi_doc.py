"""OpenAPI documentation of the chat operation, whose handler decodes its own body.

``api/chat.py`` reads the raw body and decodes it with msgspec (its error messages name the
failing field), so Litestar cannot see the request type. ``ChatOperation`` puts the
``ChatRequest`` schema (from msgspec, ``$ref``s inlined) and the responses into the OpenAPI
document instead, without changing how requests are decoded. Clients and fuzzers
(``tests/ops/test_fuzz_openapi.py``) read it at ``/openapi/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, RequestBody

from app.api.contract import MAX_STOP, RANGES, TEXT_PARTS
from app.openai_types import ChatCompletion, ChatRequest

# A request that researches a question with the fastest tier: the first example fuzzers send.
EXAMPLE_REQUEST: dict[str, Any] = {
    "model": "speed",
    "messages": [{"role": "user", "content": "Who directed the film Ed Wood?"}],
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}

_ERRORS = {
    "400": "Malformed or unsupported request (the error's param names the field).",
    "401": "Missing or invalid API key (when the server requires one).",
    "404": "Unknown model (code model_not_found).",
    "413": "Request body too large.",
    "422": "The conversation holds no user question to research.",
    "429": "Rate limited; see retry-after.",
    "502": "The upstream language model or evidence retrieval failed.",
    "503": "Search is unavailable.",
    "504": "The upstream language model did not answer in time.",
}


def inline_schema(type_: Any) -> dict[str, Any]:
    """msgspec's JSON Schema of ``type_`` with every ``$ref`` replaced by its definition.

    OpenAPI documents resolve ``#/$defs/...`` against the document root, where msgspec's
    definitions are not; inlining keeps the schema self-contained. The wire types are not
    recursive, so inlining terminates (a recursive one would raise ``RecursionError``).
    """
    (root,), defs = msgspec.json.schema_components([type_], ref_template="#/$defs/{name}")

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(root)
    return resolved


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# Fields accepted for compatibility whose only honoured value is null (or absent): any other
# is a 400 naming the field (``api/contract.py``).
_REFUSED = (
    "tools",
    "functions",
    "logprobs",
    "top_logprobs",
    "audio",
    "tool_choice",
    "function_call",
    "search_after_date_filter",
    "search_before_date_filter",
)


def chat_request_schema() -> dict[str, Any]:
    """``ChatRequest``'s schema with the checks ``api/contract.py`` makes beyond the types.

    Ranges, non-empty messages, text-only content parts and the refused fields are part of
    the contract, so the document says them; a client that follows it is never refused.
    (It is a little stricter than the server: an assistant turn may omit ``content``.)
    """
    schema = inline_schema(ChatRequest)
    props: dict[str, Any] = schema["properties"]
    props["messages"]["minItems"] = 1
    message = props["messages"]["items"]
    message["required"] = ["role", "content"]
    text_part = {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"enum": sorted(TEXT_PARTS)}, "text": {"type": "string"}},
    }
    message["properties"]["content"] = {
        "anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": text_part}]
    }
    for name, (low, high) in RANGES.items():
        if name in props:
            props[name] = _nullable({"type": "number", "minimum": low, "maximum": high})
    for name in ("max_tokens", "max_completion_tokens"):
        if name in props:
            props[name] = _nullable({"type": "integer", "minimum": 1})
    if "n" in props:
        props["n"] = _nullable({"const": 1})
    if "stop" in props:
        many = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STOP}
        props["stop"] = {"anyOf": [{"type": "string"}, many, {"type": "null"}]}
    if "modalities" in props:
        props["modalities"] = _nullable({"type": "array", "items": {"const": "text"}})
    if "search_recency_filter" in props:
        periods = ["hour", "day", "week", "month", "year"]
        props["search_recency_filter"] = _nullable({"enum": periods})
    if "stream_options" in props:
        props["stream_options"]["description"] = "Only with stream: true."
    for name in _REFUSED:
        if name in props:
            props[name] = {"type": "null", "description": "Not supported: only null."}
    return schema


def _media(schema: dict[str, Any], example: Any = None) -> OpenAPIMediaType:
    # Litestar's spec objects type ``schema`` as its own ``Schema``; a JSON Schema dict
    # serializes the same way and keeps msgspec as the one source of the wire types.
    return OpenAPIMediaType(schema=schema, example=example)  # type: ignore[arg-type]


def error_response(description: str) -> OpenAPIResponse:
    """An OpenAI-shaped error response with ``description``."""
    return OpenAPIResponse(
        description=description, content={"application/json": _media(ERROR_SCHEMA)}
    )


@dataclass
class ChatOperation(Operation):
    """The chat completions operation with its request body and responses spelled out."""

    def __post_init__(self) -> None:
        """Fill in what Litestar cannot infer from a handler that reads the raw body."""
        self.request_body = RequestBody(
            required=True,
            description="An OpenAI chat completion request; unknown fields are ignored.",
            content={"application/json": _media(chat_request_schema(), EXAMPLE_REQUEST)},
        )
        ok = OpenAPIResponse(
            description="The researched answer, or with stream=true its server-sent events.",
            content={
                "application/json": _media(inline_schema(ChatCompletion)),
                "text/event-stream": _media({"type": "string"}),
            },
        )
        self.responses = {"200": ok, **{s: error_response(d) for s, d in _ERRORS.items()}}
