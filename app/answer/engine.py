"""One request's research and writing: evidence -> numbered sources -> text -> basis.

``api/chat.py`` calls ``research`` then either ``write`` or ``write_stream``, and finally
``finalize``; the same steps serve the streaming and the non-streaming answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from app.answer.attribution import MarkerFilter, clean_markers
from app.answer.basis import attribute
from app.answer.extractive import ABSTAIN, extractive_answer
from app.answer.prompt import (
    build_messages,
    content_text,
    last_user_text,
    parse_queries,
    rewrite_messages,
)
from app.answer.sources import Source, number_sources
from app.answer.upstream import UpstreamStream
from app.errors import ApiError, UpstreamError
from app.openai_types import (
    Annotation,
    ChatMessage,
    ChatRequest,
    FieldBasis,
    SearchResult,
    Usage,
)
from app.services import Services
from app.tiers import Tier
from retrieval.filters import FilterError, SearchFilters, parse_filters
from retrieval.pipeline import Pipeline, PipelineConfig
from retrieval.plan import plan_queries
from retrieval.types import Evidence

log = logging.getLogger("footnote.engine")


class Research(msgspec.Struct, frozen=True, kw_only=True):
    """The question, the evidence gathered for it and the numbered sources."""

    question: str
    messages: list[ChatMessage]
    evidence: Evidence
    sources: list[Source]
    # Tokens the upstream spent on research itself (query rewriting), billed with the answer.
    research_prompt_tokens: int = 0
    research_completion_tokens: int = 0
    # Upstream time spent on research (query rewriting), for Server-Timing.
    rewrite_ms: float | None = None


class Final(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the response carries besides the text itself."""

    annotations: list[Annotation]
    basis: list[FieldBasis]
    citations: list[str]
    search_results: list[SearchResult]
    usage: Usage


def request_filters(req: ChatRequest) -> SearchFilters:
    """The request's search filters; a malformed one is a 400 naming its field."""
    try:
        return parse_filters(req.search_domain_filter, req.search_recency_filter)
    except FilterError as exc:
        param = "search_domain_filter" if "domain" in str(exc) else "search_recency_filter"
        raise ApiError(400, str(exc), param=param, code="invalid_value") from None


async def research(
    services: Services,
    tier: Tier,
    messages: list[ChatMessage],
    filters: SearchFilters | None = None,
) -> Research:
    """Gather evidence for the last user turn within the tier's budgets."""
    question = last_user_text(messages)
    if not question:
        # Well-formed JSON whose conversation holds nothing to research: unprocessable.
        raise ApiError(
            422,
            "The conversation needs a user message with text to research.",
            param="messages",
            code="missing_question",
        )
    pipeline = Pipeline(
        search=services.search,
        fetcher=services.fetcher,
        extractor=services.extractor,
        ranker=services.ranker,
        offload=services.offload,
        cache=services.cache,
        config=PipelineConfig(
            max_hits=tier.max_hits,
            max_pages=tier.max_pages,
            max_passages=tier.max_passages,
            fetch_deadline_s=tier.fetch_deadline_s,
            rounds=tier.rounds,
            followup_queries=tier.followup_queries,
            followup_pages=tier.followup_pages,
        ),
    )
    earlier = [content_text(m.content) for m in messages if m.role == "user"][:-1]
    plan = plan_queries(question, earlier, most=tier.max_queries)
    queries = list(plan.queries)
    spent = (0, 0)
    rewrite_ms = None
    if tier.llm_queries and services.upstream is not None:
        t0 = time.perf_counter()
        extra, spent = await _llm_queries(services, question, earlier, tier.llm_queries)
        rewrite_ms = (time.perf_counter() - t0) * 1000
        known = {q.lower() for q in queries}
        queries += [q for q in extra if q.lower() not in known]
    evidence = await pipeline.gather(plan.question, queries=queries, filters=filters)
    return Research(
        question=question,
        messages=messages,
        evidence=evidence,
        sources=number_sources(evidence),
        research_prompt_tokens=spent[0],
        research_completion_tokens=spent[1],
        rewrite_ms=rewrite_ms,
    )


async def _llm_queries(
    services: Services, question: str, earlier: list[str], most: int
) -> tuple[list[str], tuple[int, int]]:
    """Extra queries written by the upstream; a failure here only loses the extras."""
    assert services.upstream is not None
    try:
        result = await services.upstream.complete(
            rewrite_messages(question, earlier), {"max_tokens": 80}
        )
    except UpstreamError as exc:
        log.warning("query rewriting skipped: %s", exc)
        return [], (0, 0)
    return parse_queries(result.text, most=most), (
        result.prompt_tokens,
        result.completion_tokens,
    )


def upstream_params(req: ChatRequest) -> dict[str, Any]:
    """Sampling parameters the client set, passed through to the upstream as given."""
    params: dict[str, Any] = {}
    for name in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed"):
        value = getattr(req, name)
        if value is not None:
            params[name] = value
    return params


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """Finished answer text (markers already filtered) and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    upstream_ms: float = 0.0


async def write(services: Services, found: Research, req: ChatRequest) -> Written:
    """The whole answer at once: from the upstream, or extractive when none is configured."""
    valid = {s.number for s in found.sources}
    if services.upstream is None or not found.sources:
        # With no sources this is the abstention itself.
        text = extractive_answer(found.question, found.sources)
        return Written(text=text, prompt_tokens=0, completion_tokens=0, finish_reason="stop")
    t0 = time.perf_counter()
    messages = build_messages(found.messages, found.question, found.sources)
    result = await services.upstream.complete(messages, upstream_params(req))
    return Written(
        text=clean_markers(result.text, valid),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        upstream_ms=(time.perf_counter() - t0) * 1000,
    )


class TextStream:
    """Answer text as it is produced, markers filtered, with counts once it ends."""

    def __init__(self, found: Research, upstream: UpstreamStream | None) -> None:
        self._found = found
        self._upstream = upstream
        self._filter = MarkerFilter({s.number for s in found.sources})
        self.text = ""

    async def deltas(self) -> AsyncIterator[str]:
        """Yield filtered text pieces; never buffers more than a possible partial marker."""
        async for piece in self._pieces():
            out = self._filter.feed(piece)
            if out:
                self.text += out
                yield out
        rest = self._filter.flush()
        if rest:
            self.text += rest
            yield rest

    async def _pieces(self) -> AsyncIterator[str]:
        if self._upstream is None:
            found = self._found
            text = extractive_answer(found.question, found.sources)
            # Extractive text is ready at once; sent a word group at a time like a model's.
            words = text.split(" ")
            for i in range(0, len(words), 8):
                yield " ".join(words[i : i + 8]) + (" " if i + 8 < len(words) else "")
            return
        async for piece in self._upstream.deltas():
            yield piece

    def counts(self) -> tuple[int, int]:
        """Prompt and completion tokens (zero without an upstream: no model was used)."""
        return (0, 0) if self._upstream is None else self._upstream.counts()

    @property
    def finish_reason(self) -> str:
        """Why the text ended."""
        if self._upstream is None:
            return "stop"
        return self._upstream.finish_reason or "stop"


async def write_stream(services: Services, found: Research, req: ChatRequest) -> TextStream:
    """Open the answer stream; upstream errors before the first byte raise here."""
    if services.upstream is None or not found.sources:
        return TextStream(found, None)
    messages = build_messages(found.messages, found.question, found.sources)
    opened = await services.upstream.stream(messages, upstream_params(req))
    return TextStream(found, opened)


def finalize(found: Research, text: str, prompt_tokens: int, completion_tokens: int) -> Final:
    """Attribute the finished text and assemble the research metadata."""
    abstained = text.strip() == ABSTAIN
    attributed = attribute(text, found.sources, abstained=abstained)
    stats = found.evidence.stats
    prompt_tokens += found.research_prompt_tokens
    completion_tokens += found.research_completion_tokens
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        num_search_queries=stats.searches,
        num_pages_fetched=stats.pages_fetched,
        num_sources_cited=len(attributed.cited),
    )
    results = [
        SearchResult(
            title=s.document.title,
            url=s.document.url,
            date=s.document.published,
            snippet=_snippet(s),
        )
        for s in found.sources
    ]
    return Final(
        annotations=attributed.annotations,
        basis=[attributed.basis],
        citations=[s.document.url for s in found.sources],
        search_results=results,
        usage=usage,
    )


def _snippet(source: Source, limit: int = 300) -> str:
    """The source's best-scored passage, whitespace folded and cut at a word."""
    best = max(source.passages, key=lambda p: p.score, default=None)
    text = " ".join(best.text.split()) if best is not None else ""
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def server_timing(found: Research, extra: dict[str, float] | None = None) -> str:
    """A ``Server-Timing`` header value with the per-stage durations in ms."""
    stages = dict(found.evidence.stats.timings_ms)
    if found.rewrite_ms is not None:
        stages["rewrite"] = found.rewrite_ms
    stages.update(extra or {})
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in stages.items())
