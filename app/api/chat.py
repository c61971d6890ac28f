"""``POST /v1/chat/completions`` (and ``/v1beta/...``): the request path, top to bottom.

decode -> tier -> research (search, fetch, rank) -> write (upstream or extractive)
-> finalize (attribution, basis) -> completion, or the same as an SSE stream.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.response import Stream

from app import sse
from app.answer import engine
from app.errors import ApiError, api_error_from, error_body
from app.openai_types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ResponseMessage,
)
from app.services import Services
from app.tiers import resolve_tier

log = logging.getLogger("footnote.chat")


def decode_request(body: bytes) -> ChatRequest:
    """Decode and check the request body; every problem is a 400 naming its ``param``."""
    if not body.strip():
        raise ApiError(400, "The request body is empty; send a JSON object.", code="invalid_json")
    req = msgspec.json.decode(body, type=ChatRequest)
    if not req.messages:
        raise ApiError(400, "'messages' must not be empty.", param="messages", code="invalid_value")
    if req.n is not None and req.n != 1:
        raise ApiError(400, "Only n=1 is supported: one researched answer per request.", param="n")
    if req.tools:
        raise ApiError(
            400, "Tools are not supported: Footnote does its own research.", param="tools"
        )
    if req.logprobs:
        raise ApiError(400, "logprobs are not supported.", param="logprobs")
    if req.response_format and req.response_format.get("type") not in (None, "text"):
        raise ApiError(
            400,
            "Only response_format type 'text' is supported for now.",
            param="response_format",
            code="unsupported_value",
        )
    return req


@post(["/v1/chat/completions", "/v1beta/chat/completions"], status_code=200)
async def chat_completions(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Answer a chat completion with research, citations and a basis."""
    services: Services = state.services
    req = decode_request(await request.body())
    tier = resolve_tier(req.model)
    found = await engine.research(services, tier, req.messages, engine.request_filters(req))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if req.stream:
        text_stream = await engine.write_stream(services, found, req)
        return Stream(
            _stream_events(completion_id, created, req.model, found, text_stream),
            media_type="text/event-stream",
            status_code=200,
            headers={
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                "server-timing": engine.server_timing(found),
            },
        )
    written = await engine.write(services, found, req)
    final = engine.finalize(found, written.text, written.prompt_tokens, written.completion_tokens)
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=req.model,
        choices=[
            Choice(
                message=ResponseMessage(content=written.text, annotations=final.annotations),
                finish_reason=written.finish_reason,
            )
        ],
        usage=final.usage,
        basis=final.basis,
        citations=final.citations,
        search_results=final.search_results,
    )
    timing = engine.server_timing(found, {"upstream": written.upstream_ms})
    return Response(
        content=msgspec.json.encode(completion),
        media_type="application/json",
        status_code=200,
        headers={"server-timing": timing},
    )


async def _stream_events(
    completion_id: str,
    created: int,
    model: str,
    found: engine.Research,
    text_stream: engine.TextStream,
) -> AsyncIterator[bytes]:
    def chunk(choices: list[ChunkChoice], **extra: Any) -> bytes:
        return sse.event(
            ChatCompletionChunk(
                id=completion_id, created=created, model=model, choices=choices, **extra
            )
        )

    yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    try:
        async for piece in text_stream.deltas():
            yield chunk([ChunkChoice(delta=Delta(content=piece))])
    except Exception as exc:  # the stream has started: report in-band, as OpenAI does
        err = api_error_from(exc)
        if err.status >= 500 and err.code == "internal_error":
            log.error("stream failed", exc_info=exc)
        yield sse.event(error_body(err.message, err.type, err.param, err.code))
        yield sse.DONE
        return
    prompt_tokens, completion_tokens = text_stream.counts()
    final = engine.finalize(found, text_stream.text, prompt_tokens, completion_tokens)
    yield chunk(
        [
            ChunkChoice(
                delta=Delta(annotations=final.annotations),
                finish_reason=text_stream.finish_reason,
            )
        ]
    )
    yield chunk(
        [],
        usage=final.usage,
        basis=final.basis,
        citations=final.citations,
        search_results=final.search_results,
    )
    yield sse.DONE
