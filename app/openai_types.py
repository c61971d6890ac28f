"""msgspec Structs of the wire contract: the chat request, the completion, its chunks, the basis."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
Confidence = Literal["low", "medium", "high"]
# Where to search: the web, the local index of private documents, or both at once.
SearchMode = Literal["web", "local", "mixed"]


# --- request ---------------------------------------------------------------------------------


class ChatMessage(msgspec.Struct, kw_only=True):
    """One conversation turn; ``content`` is a string or a list of content parts."""

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    """``stream_options`` of the request."""

    include_usage: bool | None = False


class WebSearchOptions(msgspec.Struct, kw_only=True):
    """``web_search_options`` (OpenAI, Perplexity): only the context size changes anything."""

    search_context_size: str | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    """The fields of ``POST /v1/chat/completions`` Footnote reads; unknown fields are ignored."""

    model: str
    messages: list[ChatMessage]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    tools: list[dict[str, Any]] | None = None
    logprobs: bool | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    # Checked, then refused or passed on by app/api/contract.py (see there).
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    metadata: dict[str, str] | None = None
    top_logprobs: int | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    web_search_options: WebSearchOptions | None = None
    # Perplexity-style search filters, enforced by Footnote after search.
    search_domain_filter: list[str] | None = None
    search_recency_filter: str | None = None
    # Footnote: which sources to search (default: FOOTNOTE_SEARCH_PROVIDER as configured).
    # Checked by app/answer/engine.py ``request_search`` (a 400 naming the allowed values).
    search_mode: str | None = None
    # Perplexity fields accepted for compatibility: no images or related questions are returned.
    return_images: bool | None = None
    return_related_questions: bool | None = None
    # Perplexity date filters: refused (400) until search can filter by exact dates.
    search_after_date_filter: str | None = None
    search_before_date_filter: str | None = None


# --- basis and research metadata -------------------------------------------------------------


class Citation(msgspec.Struct, kw_only=True):
    """A source behind a field, with the verbatim excerpts that support it."""

    url: str
    title: str
    excerpts: list[str]
    # True when the source is a document of the local index, not a web page.
    internal: bool = False


class FieldBasis(msgspec.Struct, kw_only=True):
    """Why one output field says what it says."""

    field: str
    citations: list[Citation]
    reasoning: str
    confidence: Confidence


class SearchResult(msgspec.Struct, kw_only=True):
    """A source that was read, as Perplexity clients expect it."""

    title: str
    url: str
    date: str | None
    snippet: str
    # True when the source is a document of the local index, not a web page.
    internal: bool = False


class Usage(msgspec.Struct, kw_only=True):
    """Token counts from the upstream plus research counters."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    num_search_queries: int
    num_pages_fetched: int
    num_sources_cited: int


# --- non-streaming completion ----------------------------------------------------------------


class UrlCitation(msgspec.Struct, kw_only=True):
    """The span ``[start_index, end_index)`` of the content that ``url`` supports."""

    url: str
    title: str
    start_index: int
    end_index: int


class Annotation(msgspec.Struct, kw_only=True):
    """An OpenAI message annotation of type ``url_citation``."""

    url_citation: UrlCitation
    type: str = "url_citation"


class ResponseMessage(msgspec.Struct, kw_only=True):
    """The assistant message of a completion."""

    content: str
    annotations: list[Annotation]
    role: str = "assistant"
    refusal: None = None


class Choice(msgspec.Struct, kw_only=True):
    """The single choice of a completion."""

    message: ResponseMessage
    finish_reason: str
    index: int = 0
    logprobs: None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    """A chat completion with Footnote's ``basis``, ``citations`` and ``search_results``."""

    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    basis: list[FieldBasis]
    citations: list[str]
    search_results: list[SearchResult]
    object: str = "chat.completion"
    # OpenAI's spec types it a string when present, never null: left out (UNSET) unless set.
    system_fingerprint: str | msgspec.UnsetType = msgspec.UNSET


# --- streaming -------------------------------------------------------------------------------


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one chunk adds to the message."""

    role: str | None = None
    content: str | None = None
    annotations: list[Annotation] | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    """The single choice of a chunk."""

    delta: Delta
    finish_reason: str | None = None
    index: int = 0
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True):
    """A streamed chunk; the last one has ``choices: []`` and carries the research metadata.

    UNSET fields are left out of the JSON; ``object`` is always sent (OpenAI requires it).
    """

    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: str = "chat.completion.chunk"
    # UNSET: no key at all; None: ``"usage": null`` (stream_options.include_usage, as OpenAI).
    usage: Usage | msgspec.UnsetType | None = msgspec.UNSET
    basis: list[FieldBasis] | msgspec.UnsetType = msgspec.UNSET
    citations: list[str] | msgspec.UnsetType = msgspec.UNSET
    search_results: list[SearchResult] | msgspec.UnsetType = msgspec.UNSET


# --- models ----------------------------------------------------------------------------------


class ModelCard(msgspec.Struct, kw_only=True):
    """An entry of ``GET /v1/models``: a research tier and its budgets."""

    id: str
    created: int
    owned_by: str
    description: str
    budget: dict[str, float]
    object: str = "model"
    # The upstream model that writes this tier's answers (None: extractive, no upstream).
    upstream_model: str | None = None


class ModelList(msgspec.Struct, kw_only=True):
    """The body of ``GET /v1/models``."""

    data: list[ModelCard]
    object: str = "list"
