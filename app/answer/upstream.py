"""The upstream LLM, reached through the official ``openai.AsyncOpenAI`` client.

Every SDK exception is mapped here to ``UpstreamError``; nothing of the SDK leaks further.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import openai
from openai.types.chat import ChatCompletion

from app.errors import UpstreamError


class UpstreamResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished upstream answer and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters a token), used only when the upstream is silent."""
    return math.ceil(len(text) / 4) if text else 0


def _map_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError("upstream timed out", timeout=True)
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"upstream answered {exc.status_code}", status=exc.status_code)
    return UpstreamError(f"upstream unreachable: {type(exc).__name__}")


class UpstreamStream:
    """An opened streaming completion: iterate for text deltas, then read the counts."""

    def __init__(self, stream: Any, prompt_messages: list[dict[str, str]]) -> None:
        self._stream = stream
        self._prompt_chars = sum(len(m["content"]) for m in prompt_messages)
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.text = ""

    async def deltas(self) -> AsyncIterator[str]:
        """Yield content deltas as the upstream produces them."""
        try:
            async for chunk in self._stream:
                if chunk.usage is not None:
                    self.prompt_tokens = chunk.usage.prompt_tokens
                    self.completion_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    if choice.finish_reason:
                        self.finish_reason = choice.finish_reason
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        self.text += piece
                        yield piece
        except openai.OpenAIError as exc:
            raise _map_error(exc) from exc
        finally:
            await self._stream.close()
        if self.finish_reason is None:
            # A connection cut mid-answer ends the SSE body without a finish reason; the
            # text so far is not an answer to pass off as complete.
            raise UpstreamError("upstream stream ended before the answer was finished")

    def counts(self) -> tuple[int, int]:
        """Prompt and completion tokens: the upstream's when it sent them, else estimates."""
        prompt = self.prompt_tokens
        if prompt is None:
            prompt = math.ceil(self._prompt_chars / 4)
        completion = self.completion_tokens
        if completion is None:
            completion = estimate_tokens(self.text)
        return prompt, completion


class Upstream:
    """An OpenAI-compatible chat model (OpenAI, vLLM, Ollama, llama.cpp ...)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self.model = model
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers (vLLM, Ollama) accept any key; the SDK insists on one.
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        # Parameters arrive as a validated dict, which the SDK's per-literal overloads can't
        # type; the SDK still checks them at run time.
        self._create: Any = self._client.chat.completions.create

    async def complete(
        self, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> UpstreamResult:
        """One non-streaming completion."""
        try:
            resp: ChatCompletion = await self._create(
                model=self.model, messages=messages, stream=False, **params
            )
        except openai.OpenAIError as exc:
            raise _map_error(exc) from exc
        if not resp.choices:
            raise UpstreamError("upstream returned no choices")
        choice = resp.choices[0]
        text = choice.message.content or ""
        if resp.usage is not None:
            prompt, completion = resp.usage.prompt_tokens, resp.usage.completion_tokens
        else:
            prompt = estimate_tokens("".join(m["content"] for m in messages))
            completion = estimate_tokens(text)
        return UpstreamResult(
            text=text,
            prompt_tokens=prompt,
            completion_tokens=completion,
            finish_reason=choice.finish_reason or "stop",
        )

    async def stream(
        self, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> UpstreamStream:
        """Open a streaming completion; errors before the first byte raise here."""
        try:
            stream = await self._create(
                model=self.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
        except openai.OpenAIError as exc:
            raise _map_error(exc) from exc
        return UpstreamStream(stream, messages)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
