"""The chat request contract beyond its types: ranges, refusals and what each option maps to.

OpenAI fields Footnote cannot honour are refused with a 400 naming the field rather than
dropped in silence: tools and function calling (Footnote does its own research), more than one
choice, log probabilities, audio output, and image/audio/file content parts (Footnote researches
text; OpenAI itself refuses content a model cannot read). Sampling fields are range-checked as
OpenAI checks them and passed to the upstream (``engine.upstream_params``). Perplexity's
``web_search_options.search_context_size`` scales how much is read and given to the model.
"""

from __future__ import annotations

import math

import msgspec

from app.errors import ApiError
from app.openai_types import ChatMessage, ChatRequest
from app.tiers import Tier

TEXT_PARTS = frozenset({"text", "input_text"})
MEDIA_PARTS = frozenset({"image_url", "input_image", "input_audio", "audio", "file", "input_file"})
# (low, high) inclusive, as in OpenAI's CreateChatCompletionRequest.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
MAX_STOP = 4
MAX_METADATA = 16
# search_context_size -> factor on the tier's pages and passages. "medium" is the tier itself.
CONTEXT_SCALE: dict[str, tuple[float, float]] = {
    "low": (0.5, 0.5),
    "medium": (1.0, 1.0),
    "high": (1.5, 2.0),
}


def _bad(message: str, param: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _unsupported(message: str, param: str) -> ApiError:
    return ApiError(400, message, param=param, code="unsupported_parameter")


def check_request(req: ChatRequest) -> None:
    """Raise the 400 for the first field Footnote cannot honour or that is out of range."""
    _check_messages(req.messages)
    _check_sampling(req)
    _check_capabilities(req)
    size = req.web_search_options.search_context_size if req.web_search_options else None
    if size is not None and size not in CONTEXT_SCALE:
        raise _bad(
            f"web_search_options.search_context_size must be one of low, medium, high, "
            f"got {size!r}.",
            "web_search_options.search_context_size",
        )
    if req.stream_options is not None and not req.stream:
        raise _bad("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    for name in ("search_after_date_filter", "search_before_date_filter"):
        if getattr(req, name) is not None:
            raise _unsupported(
                f"'{name}' is not supported; use 'search_recency_filter' "
                "(hour, day, week, month, year).",
                name,
            )


def _check_messages(messages: list[ChatMessage]) -> None:
    for i, message in enumerate(messages):
        content = message.content
        if content is None:
            # Only an assistant turn (e.g. one that called tools) or a legacy function result
            # may come without content, as in OpenAI's request schema.
            if message.role not in {"assistant", "function"}:
                raise _bad(
                    f"messages[{i}].content is required for a '{message.role}' message.",
                    f"messages[{i}].content",
                )
            continue
        if isinstance(content, str):
            continue
        for j, part in enumerate(content):
            _check_part(i, j, message.role, part)


def _check_part(i: int, j: int, role: str, part: dict[str, object]) -> None:
    where = f"messages[{i}].content[{j}]"
    kind = part.get("type")
    if kind in TEXT_PARTS:
        if not isinstance(part.get("text"), str):
            raise _bad(f"{where}.text must be a string.", f"{where}.text")
    elif kind == "refusal" and role == "assistant":
        return  # an earlier turn's refusal: kept out of the prompt, like other non-text parts
    elif kind in MEDIA_PARTS:
        raise ApiError(
            400,
            f"{where} is a '{kind}' part: Footnote researches text and does not read images, "
            "audio or files. Send the question as text.",
            param=where,
            code="unsupported_content",
        )
    else:
        raise _bad(f"{where} has an unknown content part type {kind!r}.", f"{where}.type")


def _check_sampling(req: ChatRequest) -> None:
    for name, (low, high) in RANGES.items():
        value = getattr(req, name)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise _bad(f"'{name}' must be between {low:g} and {high:g}, got {value}.", name)
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(req, name)
        if value is not None and value < 1:
            raise _bad(f"'{name}' must be at least 1, got {value}.", name)
    if isinstance(req.stop, list) and len(req.stop) > MAX_STOP:
        raise _bad(f"'stop' takes at most {MAX_STOP} sequences.", "stop")
    if req.metadata is not None:
        if len(req.metadata) > MAX_METADATA:
            raise _bad(f"'metadata' takes at most {MAX_METADATA} pairs.", "metadata")
        if any(len(k) > 64 or len(v) > 512 for k, v in req.metadata.items()):
            raise _bad("'metadata' keys are at most 64 characters, values at most 512.", "metadata")


def _check_capabilities(req: ChatRequest) -> None:
    if req.n is not None:
        if req.n < 1:
            raise _bad(f"'n' must be at least 1, got {req.n}.", "n")
        if req.n > 1:
            raise _unsupported("Only n=1 is supported: one researched answer per request.", "n")
    if req.tools:
        raise _unsupported("Tools are not supported: Footnote does its own research.", "tools")
    if req.functions:
        raise _unsupported(
            "Function calling is not supported: Footnote does its own research.", "functions"
        )
    for name in ("tool_choice", "function_call"):
        if getattr(req, name) not in (None, "none", "auto"):
            raise _unsupported(
                f"'{name}' cannot force a call: Footnote has no tools to call.", name
            )
    if req.logprobs:
        raise _unsupported("logprobs are not supported.", "logprobs")
    if req.top_logprobs:
        raise _unsupported("top_logprobs are not supported (no logprobs).", "top_logprobs")
    if req.audio is not None:
        raise _unsupported("Audio output is not supported: Footnote answers in text.", "audio")
    if req.modalities is not None and any(m != "text" for m in req.modalities):
        raise _unsupported("Only the 'text' modality is supported.", "modalities")


def sized_tier(tier: Tier, req: ChatRequest) -> Tier:
    """The tier scaled by ``web_search_options.search_context_size`` (medium: unchanged)."""
    size = req.web_search_options.search_context_size if req.web_search_options else None
    if size is None or size == "medium":
        return tier
    page_scale, passage_scale = CONTEXT_SCALE[size]
    pages = max(2, math.ceil(tier.max_pages * page_scale))
    return msgspec.structs.replace(
        tier,
        max_pages=pages,
        max_hits=max(tier.max_hits, pages),
        max_passages=max(4, math.ceil(tier.max_passages * passage_scale)),
    )
