"""The upstream LLM, reached through the official ``openai.AsyncOpenAI`` client.

Every SDK exception is mapped here to ``UpstreamError``; nothing of the SDK leaks further.

Retries are ours, not the SDK's (the client is built with ``max_retries=0``), so the policy is
explicit and testable (``RetryPolicy``):

* retried: connection failures (refused, reset, DNS) and HTTP 408, 409, 429 and 5xx, unless the
  upstream says ``x-should-retry: false`` (``x-should-retry: true`` makes any status retryable);
* not retried: timeouts (one already spent the whole ``upstream_timeout_s``; a second would
  double the wait) and other 4xx (a retry cannot fix a rejected key, model or request);
* ``1 + upstream_max_retries`` attempts in all; the wait before retry ``n`` (0-based) is
  ``base_delay_s * 2**n`` with jitter (50-100% of it), capped at ``max_delay_s``; a
  ``retry-after-ms`` / ``retry-after`` header (seconds or an HTTP date) replaces it when given,
  and one longer than ``max_delay_s`` ends the retries at once: better to fall back now than to
  hold the client that long;
* streams are retried only while opening (before any byte reached our client).

When the attempts are spent, ``is_outage`` says whether the failure is one the service may
answer around (``FOOTNOTE_UPSTREAM_FALLBACK=extractive``, see ``app/answer/engine.py``).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio
import msgspec
import openai
from openai.types.chat import ChatCompletion

from app.errors import UpstreamError

log = logging.getLogger("footnote.upstream")

T = TypeVar("T")
Fallback = Literal["extractive", "error"]
FALLBACKS: tuple[Fallback, ...] = ("extractive", "error")
RETRY_STATUSES = frozenset({408, 409, 429})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how long to retry a failed upstream call (see the module docstring)."""

    max_retries: int = 1
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def wait_s(self, retry: int, exc: Exception) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based) after ``exc``; None: stop."""
        if retry >= self.max_retries or not retryable(exc):
            return None
        headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else None
        asked = retry_after_s(headers) if headers is not None else None
        if asked is not None:
            return max(0.0, asked) if asked <= self.max_delay_s else None
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0**retry)
        return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret


def retryable(exc: Exception) -> bool:
    """Whether a retry may succeed where ``exc`` failed (timeouts are not retried)."""
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        should = exc.response.headers.get("x-should-retry", "").lower()
        if should in ("true", "false"):
            return should == "true"
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return False


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait the upstream asked for: ``retry-after-ms``, else ``retry-after`` (s or date)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / scale
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    raw = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(raw) if raw else None
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - time.time())


def is_outage(exc: UpstreamError) -> bool:
    """A failure of the upstream's availability (may be answered extractively).

    Timeouts, unreachable or broken connections, 408/409/429 and 5xx. Other 4xx mean the
    upstream rejected our key, model or the client's parameters: those stay errors, so that a
    misconfiguration is seen rather than hidden behind extractive answers.
    """
    if exc.timeout or exc.status is None:
        return True
    return exc.status in RETRY_STATUSES or exc.status >= 500


def describe(exc: UpstreamError) -> str:
    """A short reason for a client-facing note: ``timed out``, ``HTTP 503`` ..."""
    if exc.timeout:
        return "timed out"
    if exc.status is not None:
        return f"HTTP {exc.status}"
    return str(exc).removeprefix("upstream ")


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
        self._pieces = self._read()
        self._head: list[str] | None = None

    async def start(self) -> None:
        """Wait for the first piece of text, so that a failure before it raises here.

        Up to this point nothing has been sent to our own client, so the caller may still
        answer differently (fall back); afterwards a failure can only be reported in-band.
        """
        try:
            self._head = [await anext(self._pieces)]
        except StopAsyncIteration:
            self._head = []

    async def deltas(self) -> AsyncIterator[str]:
        """Yield content deltas as the upstream produces them."""
        if self._head is not None:
            for piece in self._head:
                yield piece
            self._head = []
        async for piece in self._pieces:
            yield piece

    async def aclose(self) -> None:
        """Stop reading and close the connection (idempotent)."""
        await self._pieces.aclose()

    async def _read(self) -> AsyncGenerator[str, None]:
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
            # Shielded: when our client hangs up this runs inside a cancelled scope, and the
            # close must still reach the socket so the upstream stops generating.
            with anyio.CancelScope(shield=True):
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
    """An OpenAI-compatible chat model (OpenAI, vLLM, Ollama, llama.cpp ...).

    ``fallback`` is what a request does once the upstream is out (``is_outage``) after the
    retries: ``extractive`` answers from the same evidence without it, ``error`` answers 502/504.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float,
        max_retries: int,
        retry_max_wait_s: float = 8.0,
        fallback: Fallback = "extractive",
        tier_models: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        # Tier name -> upstream model (FOOTNOTE_TIER_MODELS); unmapped tiers use ``model``.
        self.tier_models = dict(tier_models or {})
        self.fallback: Fallback = fallback
        self.retry = RetryPolicy(max_retries=max_retries, max_delay_s=retry_max_wait_s)
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers (vLLM, Ollama) accept any key; the SDK insists on one.
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            # The SDK's own retries (2 by default) are off: ``RetryPolicy`` decides, see above.
            max_retries=0,
        )
        # Parameters arrive as a validated dict, which the SDK's per-literal overloads can't
        # type; the SDK still checks them at run time.
        self._create: Any = self._client.chat.completions.create

    def model_for(self, tier: str) -> str:
        """The upstream model that answers for research tier ``tier``."""
        return self.tier_models.get(tier, self.model)

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` under the retry policy; the last failure is raised as ``UpstreamError``."""
        retry = 0
        while True:
            try:
                return await call()
            except openai.OpenAIError as exc:
                wait = self.retry.wait_s(retry, exc)
                if wait is None:
                    raise _map_error(exc) from exc
                log.warning("upstream failed (%s); retry %d in %.2f s", exc, retry + 1, wait)
                retry += 1
                await anyio.sleep(wait)

    async def complete(
        self, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> UpstreamResult:
        """One non-streaming completion (``params["model"]``, when given, picks the model)."""
        params = dict(params)
        model = params.pop("model", self.model)

        async def call() -> ChatCompletion:
            resp: ChatCompletion = await self._create(
                model=model, messages=messages, stream=False, **params
            )
            return resp

        resp = await self._with_retries(call)
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
        params = dict(params)
        model = params.pop("model", self.model)

        async def call() -> Any:
            return await self._create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )

        return UpstreamStream(await self._with_retries(call), messages)

    async def ready(self, timeout_s: float) -> None:
        """``GET /models`` once, within ``timeout_s``; raises ``UpstreamError`` otherwise."""
        try:
            await self._client.with_options(timeout=timeout_s, max_retries=0).models.list()
        except openai.OpenAIError as exc:
            raise _map_error(exc) from exc

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
