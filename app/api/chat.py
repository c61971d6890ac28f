"""``POST /v1/chat/completions`` (and ``/v1beta/...``): the request path, top to bottom.

decode -> tier -> research (search, fetch, rank) -> write (upstream or extractive)
-> finalize (attribution, basis) -> completion, or the same as an SSE stream.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.response import Stream

from app import sse
from app.answer import engine, structured
from app.api.contract import check_request, sized_tier
from app.api.openapi_doc import ChatOperation
from app.errors import ApiError, api_error_from, error_body
from app.obs.context import note_error, note_research, note_usage
from app.openai_types import (
    Annotation,
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


def decode_request(body: bytes) -> tuple[ChatRequest, structured.StructuredFormat | None]:
    """Decode and check the request body; every problem is a 400 naming its ``param``.

    Also returns the structured format asked for (``None`` for prose): a malformed
    ``response_format`` is a 400 before any research is spent on it.
    """
    if not body.strip():
        raise ApiError(400, "The request body is empty; send a JSON object.", code="invalid_json")
    req = msgspec.json.decode(body, type=ChatRequest)
    if not req.messages:
        raise ApiError(400, "'messages' must not be empty.", param="messages", code="invalid_value")
    check_request(req)
    return req, structured.parse_format(req.response_format)


class _Reply(msgspec.Struct, frozen=True, kw_only=True):
    """The identity of one completion; builds its JSON response or its stream chunks."""

    id: str
    created: int
    model: str
    # ``stream_options.include_usage``: every chunk but the last says ``"usage": null``.
    include_usage: bool = False

    def completion(
        self,
        text: str,
        annotations: list[Annotation],
        finish_reason: str,
        final: engine.Final,
        headers: dict[str, str],
    ) -> Response[Any]:
        """The whole answer as one ChatCompletion (with basis, citations, search results)."""
        body = ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[
                Choice(
                    message=ResponseMessage(content=text, annotations=annotations),
                    finish_reason=finish_reason,
                )
            ],
            usage=final.usage,
            basis=final.basis,
            citations=final.citations,
            search_results=final.search_results,
        )
        return Response(
            content=msgspec.json.encode(body),
            media_type="application/json",
            status_code=200,
            headers=headers,
        )

    def chunk(self, choices: list[ChunkChoice], **extra: Any) -> bytes:
        """One SSE event carrying a ChatCompletionChunk."""
        if self.include_usage:
            extra.setdefault("usage", None)
        return sse.event(
            ChatCompletionChunk(
                id=self.id, created=self.created, model=self.model, choices=choices, **extra
            )
        )

    def ending(
        self, finish_reason: str, final: engine.Final, annotations: list[Annotation] | None
    ) -> Iterator[bytes]:
        """The finish chunk, the metadata chunk (``choices: []``, always with usage), [DONE]."""
        yield self.chunk(
            [ChunkChoice(delta=Delta(annotations=annotations), finish_reason=finish_reason)]
        )
        yield self.chunk(
            [],
            usage=final.usage,
            basis=final.basis,
            citations=final.citations,
            search_results=final.search_results,
        )
        yield sse.DONE


def _stream(events: AsyncIterator[bytes], headers: dict[str, str]) -> Stream:
    """An SSE response that proxies must not buffer."""
    return Stream(
        events,
        media_type="text/event-stream",
        status_code=200,
        headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
    )


# "/chat/completions": Parallel's SDK examples use the bare host as base_url.
@post(
    ["/v1/chat/completions", "/v1beta/chat/completions", "/chat/completions"],
    status_code=200,
    operation_class=ChatOperation,
)
async def chat_completions(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Answer a chat completion with research, citations and a basis."""
    services: Services = state.services
    req, fmt = decode_request(await request.body())
    tier = sized_tier(resolve_tier(req.model), req)
    if fmt is not None:
        engine.require_upstream(services)
    found = await engine.research(
        services,
        tier,
        req.messages,
        engine.request_filters(req),
        engine.request_search(services, req),
    )
    note_research(tier.name, found.evidence.stats, engine.stage_timings(found))
    reply = _Reply(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=req.model,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )
    if fmt is not None:
        return await _structured_response(services, found, req, fmt, reply)
    if req.stream:
        text_stream = await engine.write_stream(services, found, req)
        return _stream(
            _stream_events(reply, found, text_stream),
            {
                "server-timing": engine.server_timing(found),
                **_fallback_header(text_stream.fallback),
            },
        )
    written = await engine.write(services, found, req)
    final = engine.finalize(
        found,
        written.text,
        written.prompt_tokens,
        written.completion_tokens,
        fallback=written.fallback,
    )
    note_usage(final.usage.prompt_tokens, final.usage.completion_tokens, written.upstream_ms)
    timing = engine.server_timing(found, {"upstream": written.upstream_ms})
    return reply.completion(
        written.text,
        final.annotations,
        written.finish_reason,
        final,
        {"server-timing": timing, **_fallback_header(written.fallback)},
    )


def _fallback_header(fallback: str | None) -> dict[str, str]:
    """``x-footnote-fallback: extractive`` when the upstream failed and was answered around."""
    return {"x-footnote-fallback": "extractive"} if fallback is not None else {}


async def _stream_events(
    reply: _Reply, found: engine.Research, text_stream: engine.TextStream
) -> AsyncIterator[bytes]:
    """The SSE body: role, content deltas, annotations + finish, then the metadata chunk.

    The last chunk (``choices: []``) always carries ``usage`` with the basis; with
    ``stream_options.include_usage`` every other chunk also says ``"usage": null``, as OpenAI's do.
    """
    yield reply.chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    try:
        async for piece in text_stream.deltas():
            yield reply.chunk([ChunkChoice(delta=Delta(content=piece))])
    except Exception as exc:  # the stream has started: report in-band, as OpenAI does
        err = api_error_from(exc)
        if err.status >= 500 and err.code == "internal_error":
            log.error("stream failed", exc_info=exc)
        note_error(err.type, err.code)
        yield sse.event(error_body(err.message, err.type, err.param, err.code))
        yield sse.DONE
        return
    prompt_tokens, completion_tokens = text_stream.counts()
    final = engine.finalize(
        found, text_stream.text, prompt_tokens, completion_tokens, fallback=text_stream.fallback
    )
    note_usage(final.usage.prompt_tokens, final.usage.completion_tokens, None)
    for event in reply.ending(text_stream.finish_reason, final, final.annotations):
        yield event


async def _structured_response(
    services: Services,
    found: engine.Research,
    req: ChatRequest,
    fmt: structured.StructuredFormat,
    reply: _Reply,
) -> Response[Any]:
    """A ``response_format`` answer: the whole JSON is validated before any of it is sent.

    Streaming clients get the validated JSON as content deltas, then the finish chunk and the
    final chunk with basis and usage, like a prose stream.
    """
    written = await engine.write_structured(services, found, req, fmt)
    final = engine.finalize_structured(found, written)
    note_usage(final.usage.prompt_tokens, final.usage.completion_tokens, written.upstream_ms)
    headers = {"server-timing": engine.server_timing(found, {"upstream": written.upstream_ms})}
    if not req.stream:
        return reply.completion(written.text, [], written.finish_reason, final, headers)

    async def events() -> AsyncIterator[bytes]:
        yield reply.chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
        text = written.text
        for i in range(0, len(text), _JSON_PIECE):
            yield reply.chunk([ChunkChoice(delta=Delta(content=text[i : i + _JSON_PIECE]))])
        for event in reply.ending(written.finish_reason, final, None):
            yield event

    return _stream(events(), headers)


# Characters of validated JSON per streamed content delta.
_JSON_PIECE = 48
