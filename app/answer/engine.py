"""One request's research and writing: evidence -> numbered sources -> text -> basis.

``api/chat.py`` calls ``research`` then either ``write`` or ``write_stream``, and finally
``finalize``; the same steps serve the streaming and the non-streaming answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, get_args

import msgspec

from app.answer import structured
from app.answer.attribution import Claim, MarkerFilter, clean_markers
from app.answer.basis import attribute, field_basis
from app.answer.correct import MarkerCorrector, SupportIndex, correct_markers
from app.answer.extractive import ABSTAIN, extractive_answer
from app.answer.links import LinkFilter, clean_links
from app.answer.prompt import (
    build_messages,
    content_text,
    last_user_text,
    parse_queries,
    rewrite_messages,
)
from app.answer.sources import Source, number_sources
from app.answer.sufficiency import Sufficiency, assess
from app.answer.upstream import UpstreamStream, describe, is_outage
from app.errors import ApiError, UpstreamError
from app.openai_types import (
    Annotation,
    ChatMessage,
    ChatRequest,
    FieldBasis,
    SearchMode,
    SearchResult,
    Usage,
)
from app.services import Services
from app.tiers import Tier, resolve_tier
from retrieval.filters import FilterError, SearchFilters, parse_filters
from retrieval.index import MixedProvider
from retrieval.pipeline import Pipeline, PipelineConfig
from retrieval.plan import plan_queries
from retrieval.progress import report
from retrieval.protocols import SearchProvider
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
    # Whether the sources answer the question (``sufficiency.assess``); None: not checked.
    sufficiency: Sufficiency | None = None
    # The sources' sentences tokenized once, for marker correction, values and reasoning.
    support: SupportIndex | None = None

    @property
    def insufficient(self) -> bool:
        """The evidence check found that the sources do not answer the question."""
        return self.sufficiency is not None and not self.sufficiency.answered


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


def request_search(services: Services, req: ChatRequest) -> SearchProvider:
    """The provider the request's ``search_mode`` picks; a side not configured is a 400.

    ``None``: the configured default. ``web``: the web providers (everything configured
    when no local index is). ``local``: the local index only. ``mixed``: both at once.
    """
    mode = req.search_mode
    web, local = services.web_search, services.local_index
    if mode is None:
        return services.search
    if mode not in get_args(SearchMode):
        raise ApiError(
            400,
            f"search_mode must be one of 'web', 'local' or 'mixed', got {mode!r}.",
            param="search_mode",
            code="invalid_value",
        )
    if mode == "web" and web is None and local is None:
        return services.search
    chosen: SearchProvider | None = {
        "web": web,
        "local": local,
        "mixed": MixedProvider(local, web) if local is not None and web is not None else None,
    }[mode]
    if chosen is None:
        needs = {
            "web": "a web search provider",
            "local": "the local index",
            "mixed": "both a web search provider and the local index",
        }[mode]
        raise ApiError(
            400,
            f"search_mode {mode!r} needs {needs}, and this server is not configured with it "
            "(FOOTNOTE_SEARCH_PROVIDER, e.g. 'searxng,local').",
            param="search_mode",
            code="unsupported_value",
        )
    return chosen


async def research(
    services: Services,
    tier: Tier,
    messages: list[ChatMessage],
    filters: SearchFilters | None = None,
    search: SearchProvider | None = None,
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
        search=search or services.search,
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
    sources = number_sources(evidence)
    return Research(
        question=question,
        messages=messages,
        evidence=evidence,
        sources=sources,
        research_prompt_tokens=spent[0],
        research_completion_tokens=spent[1],
        rewrite_ms=rewrite_ms,
        sufficiency=assess(question, sources),
        support=SupportIndex(sources),
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
    """Sampling parameters the client set, passed through to the upstream as given.

    ``user`` goes along as OpenAI's end-user id; ``metadata`` does not (OpenAI only takes it
    with ``store``, which Footnote never sets).
    """
    params: dict[str, Any] = {}
    for name in (
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "user",
    ):
        value = getattr(req, name)
        if value is not None:
            params[name] = value
    return params


def _params(services: Services, req: ChatRequest) -> dict[str, Any]:
    """The client's sampling parameters plus the upstream model mapped to the request's tier."""
    params = upstream_params(req)
    if services.upstream is not None:
        params["model"] = services.upstream.model_for(resolve_tier(req.model).name)
    return params


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """Finished answer text (markers already filtered) and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    upstream_ms: float = 0.0
    # Why the upstream was not used although configured (see ``falls_back``), else None.
    fallback: str | None = None


FALLBACK_NOTE = (
    "The upstream model failed ({reason}); this answer was assembled extractively from the sources."
)


INSUFFICIENT_REASONING = (
    "Footnote's evidence check found that the sources read may not answer the question "
    "({reason}), so confidence is low."
)


def falls_back(services: Services, exc: UpstreamError) -> bool:
    """Whether to answer extractively after ``exc`` (``FOOTNOTE_UPSTREAM_FALLBACK``)."""
    if services.upstream is None or services.upstream.fallback != "extractive":
        return False
    if not is_outage(exc):
        return False
    log.warning("upstream failed (%s); answering extractively", exc)
    return True


async def write(services: Services, found: Research, req: ChatRequest) -> Written:
    """The whole answer at once: from the upstream, or extractive when none is configured."""
    report("writing")
    valid = {s.number for s in found.sources}
    if services.upstream is None or not found.sources:
        # With no sources this is the abstention itself.
        text = extractive_answer(found.question, found.sources)
        return Written(text=text, prompt_tokens=0, completion_tokens=0, finish_reason="stop")
    t0 = time.perf_counter()
    messages = build_messages(
        found.messages, found.question, found.sources, insufficient=found.insufficient
    )
    try:
        result = await services.upstream.complete(messages, _params(services, req))
    except UpstreamError as exc:
        if not falls_back(services, exc):
            raise
        text = extractive_answer(found.question, found.sources)
        return Written(
            text=text,
            prompt_tokens=0,
            completion_tokens=0,
            finish_reason="stop",
            fallback=describe(exc),
        )
    return Written(
        text=correct_markers(
            clean_markers(clean_links(result.text, _fetched(found)), valid),
            found.sources,
            found.support,
        ),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        upstream_ms=(time.perf_counter() - t0) * 1000,
    )


class TextStream:
    """Answer text as it is produced, markers filtered, with counts once it ends."""

    def __init__(
        self, found: Research, upstream: UpstreamStream | None, *, fallback: str | None = None
    ) -> None:
        self._found = found
        self._upstream = upstream
        # Why the text is extractive although an upstream is configured, else None.
        self.fallback = fallback
        self._links = LinkFilter(_fetched(found))
        self._filter = MarkerFilter({s.number for s in found.sources})
        self._corrector = MarkerCorrector(found.sources, found.support)
        self.text = ""

    async def deltas(self) -> AsyncIterator[str]:
        """Yield filtered, corrected text pieces as they arrive.

        Only a possible partial marker, a sentence's markers (until the sentence is complete
        and they are checked) and trailing spaces are held back.
        """
        async for piece in self._pieces():
            out = self._corrector.feed(self._filter.feed(self._links.feed(piece)))
            if out:
                self.text += out
                yield out
        rest = self._filter.feed(self._links.flush()) + self._filter.flush()
        rest = self._corrector.feed(rest) + self._corrector.flush()
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
    report("writing")
    if services.upstream is None or not found.sources:
        return TextStream(found, None)
    messages = build_messages(
        found.messages, found.question, found.sources, insufficient=found.insufficient
    )
    try:
        opened = await services.upstream.stream(messages, _params(services, req))
        # Nothing has been sent yet: a failure before the first text byte can still fall back.
        await opened.start()
    except UpstreamError as exc:
        if not falls_back(services, exc):
            raise
        return TextStream(found, None, fallback=describe(exc))
    return TextStream(found, opened)


def finalize(
    found: Research,
    text: str,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    fallback: str | None = None,
) -> Final:
    """Attribute the finished text and assemble the research metadata.

    ``fallback`` (the upstream's failure, when the text is extractive because of it) is
    stated at the start of the basis reasoning.
    """
    abstained = text.strip() == ABSTAIN
    attributed = attribute(
        text, found.sources, abstained=abstained, question=found.question, index=found.support
    )
    if found.insufficient and found.sufficiency is not None:
        # The model may answer anyway; what it cites stays, but the basis says it is doubtful.
        note = INSUFFICIENT_REASONING.format(reason=found.sufficiency.reason)
        basis = attributed.basis
        basis = msgspec.structs.replace(
            basis, confidence="low", reasoning=f"{note} {basis.reasoning}".strip()
        )
        attributed = msgspec.structs.replace(attributed, basis=basis)
    if fallback is not None:
        note = FALLBACK_NOTE.format(reason=fallback)
        reasoning = f"{note} {attributed.basis.reasoning}".strip()
        attributed = msgspec.structs.replace(
            attributed, basis=msgspec.structs.replace(attributed.basis, reasoning=reasoning)
        )
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
            internal=s.document.internal,
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


def stage_timings(found: Research, extra: dict[str, float] | None = None) -> dict[str, float]:
    """Per-stage durations in ms: search, fetch_extract, rank, rewrite, and ``extra``."""
    stages = dict(found.evidence.stats.timings_ms)
    if found.rewrite_ms is not None:
        stages["rewrite"] = found.rewrite_ms
    stages.update(extra or {})
    return stages


def server_timing(found: Research, extra: dict[str, float] | None = None) -> str:
    """A ``Server-Timing`` header value with the per-stage durations in ms."""
    stages = stage_timings(found, extra)
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in stages.items())


def require_upstream(services: Services) -> None:
    """Structured output needs an upstream model: without one, a 400 before any research."""
    if services.upstream is None:
        raise ApiError(
            400,
            "Structured output (response_format json_object/json_schema) needs an upstream "
            "model, and this server has none configured (FOOTNOTE_UPSTREAM_BASE_URL).",
            param="response_format",
            code="unsupported_value",
        )


class StructuredWritten(msgspec.Struct, frozen=True, kw_only=True):
    """A schema-valid JSON answer, its attributed leaf values and the upstream's counts."""

    text: str
    claims: list[structured.LeafClaim]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    upstream_ms: float = 0.0


def _fetched(found: Research) -> set[str]:
    """The URLs the answer may link to: the sources Footnote fetched."""
    return {s.document.url for s in found.sources}


def _checked(
    text: str, fmt: structured.StructuredFormat, allowed: set[str]
) -> tuple[Any, list[structured.Leaf]]:
    value, leaves = structured.strip_markers(
        structured.decode_output(text), clean=lambda s: clean_links(s, allowed)
    )
    problems = structured.validate(value, fmt)
    if problems:
        raise structured.StructuredError(problems)
    return value, leaves


async def write_structured(
    services: Services, found: Research, req: ChatRequest, fmt: structured.StructuredFormat
) -> StructuredWritten:
    """A JSON answer for ``response_format``: validated, repaired once, then attributed.

    A reply that is still invalid after one repair attempt is a 502: the upstream could not
    produce the format, and nothing half-valid reaches the client.
    """
    report("writing")
    require_upstream(services)
    assert services.upstream is not None
    t0 = time.perf_counter()
    messages = build_messages(
        found.messages,
        found.question,
        found.sources,
        output_format=structured.instructions(fmt),
        insufficient=found.insufficient,
    )
    params = {**_params(services, req), "response_format": fmt.raw}
    result = await services.upstream.complete(messages, params)
    prompt, completion = result.prompt_tokens, result.completion_tokens
    try:
        value, leaves = _checked(result.text, fmt, _fetched(found))
    except structured.StructuredError as first:
        log.info("structured output invalid, asking for a repair: %s", first)
        repair = [
            *messages,
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": structured.repair_prompt(first.problems)},
        ]
        result = await services.upstream.complete(repair, params)
        prompt += result.prompt_tokens
        completion += result.completion_tokens
        try:
            value, leaves = _checked(result.text, fmt, _fetched(found))
        except structured.StructuredError as second:
            raise ApiError(
                502,
                "The upstream model's reply did not match response_format after one repair "
                f"attempt: {second.problems[0]}",
                type="upstream_error",
                code="invalid_structured_output",
            ) from None
    return StructuredWritten(
        text=json.dumps(value, ensure_ascii=False),
        claims=structured.attributed_claims(leaves, found.sources, found.question, found.support),
        prompt_tokens=prompt,
        completion_tokens=completion,
        finish_reason=result.finish_reason,
        upstream_ms=(time.perf_counter() - t0) * 1000,
    )


def finalize_structured(found: Research, written: StructuredWritten) -> Final:
    """The research metadata of a structured answer: one basis entry per leaf value.

    A string or number is attributed to the sources that hold it. A boolean is a conclusion,
    not a quote: its entry rests on the evidence cited for the other values of the same
    object (or of the whole answer), and says so. A null states no fact and cites nothing.
    """
    final = finalize(found, "", written.prompt_tokens, written.completion_tokens)

    def claim(leaf: structured.LeafClaim) -> Claim:
        return Claim(start=0, end=0, text=leaf.text, sources=leaf.sources)

    values = [c for c in written.claims if c.kind == "value"]
    basis: list[FieldBasis] = []
    cited: set[int] = set()
    for leaf in written.claims:
        if leaf.kind == "value":
            entry = field_basis(leaf.path, [claim(leaf)], found.sources, index=found.support)
            cited.update(entry.cited)
            basis.append(entry.basis)
            continue
        if leaf.kind == "null":
            basis.append(
                FieldBasis(
                    field=leaf.path,
                    citations=[],
                    reasoning="No value was given here, so nothing is cited.",
                    confidence="low",
                )
            )
            continue
        here = structured.parent(leaf.path)
        siblings = [c for c in values if structured.parent(c.path) == here and c.sources]
        grounds = siblings or [c for c in values if c.sources]
        entry = field_basis(
            leaf.path, [claim(c) for c in grounds], found.sources, index=found.support
        )
        names = ", ".join(c.path for c in grounds) or "no other field"
        note = (
            f"This yes/no value is a conclusion drawn from the evidence cited for {names}, "
            "not a quoted fact."
        )
        basis.append(
            msgspec.structs.replace(
                entry.basis, reasoning=f"{note} {entry.basis.reasoning}".strip()
            )
        )
    if found.insufficient and found.sufficiency is not None:
        # As for prose: the values keep what they cite, but none is more than doubtful.
        note = INSUFFICIENT_REASONING.format(reason=found.sufficiency.reason)
        basis = [
            msgspec.structs.replace(b, confidence="low", reasoning=f"{note} {b.reasoning}")
            for b in basis
        ]
    usage = msgspec.structs.replace(final.usage, num_sources_cited=len(cited))
    return msgspec.structs.replace(final, annotations=[], basis=basis, usage=usage)
