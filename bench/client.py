"""Drives Footnote over HTTP with the official ``openai`` SDK and records each answer.

Every request is a plain ``chat.completions.create(model=<tier>, messages=[user question])``
through ``AsyncOpenAI`` (no retries), timed on the client from sending to the parsed
completion. The ``server-timing`` header gives the server's stages (``search``,
``fetch_extract``, ``rank``, ``upstream``), ``usage.num_pages_fetched`` the pages read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import openai

from tests.fakes.simweb import Question


@dataclass
class Outcome:
    """One request's result as the client saw it (plus what the world logged, if drained)."""

    qid: str
    model: str
    e2e_ms: float
    ok: bool
    error: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    pages_fetched: int = 0
    searches: int = 0
    page_latencies: list[tuple[str, float, float, float]] = field(default_factory=list)
    search_times: list[float] = field(default_factory=list)
    prompt: str | None = None


def parse_server_timing(value: str | None) -> dict[str, float]:
    """``search;dur=201.3, rank;dur=4.0`` -> ``{"search": 201.3, "rank": 4.0}``."""
    stages: dict[str, float] = {}
    for item in (value or "").split(","):
        name, _, params = item.strip().partition(";")
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    stages[name] = float(number)
    return stages


async def _one(client: openai.AsyncOpenAI, model: str, question: Question) -> Outcome:
    started = time.perf_counter()
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": question["question"]}]
        )
        completion = raw.parse()
    except openai.OpenAIError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(question["id"], model, elapsed, ok=False, error=f"{type(exc).__name__}")
    elapsed = (time.perf_counter() - started) * 1000
    usage = completion.usage
    pages = getattr(usage, "num_pages_fetched", 0) if usage else 0
    searches = getattr(usage, "num_search_queries", 0) if usage else 0
    return Outcome(
        qid=question["id"],
        model=model,
        e2e_ms=elapsed,
        ok=True,
        stages=parse_server_timing(raw.headers.get("server-timing")),
        pages_fetched=int(pages or 0),
        searches=int(searches or 0),
    )


async def _run(
    base_url: str,
    model: str,
    questions: Sequence[Question],
    concurrency: int,
    after_each: Callable[[Outcome], None] | None,
) -> tuple[list[Outcome], float]:
    client = openai.AsyncOpenAI(
        base_url=f"{base_url}/v1", api_key="bench", max_retries=0, timeout=120.0
    )
    semaphore = asyncio.Semaphore(max(1, concurrency))
    results: list[Outcome | None] = [None] * len(questions)

    async def worker(index: int, question: Question) -> None:
        async with semaphore:
            outcome = await _one(client, model, question)
            if after_each is not None:
                after_each(outcome)
            results[index] = outcome

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(i, q) for i, q in enumerate(questions)))
    finally:
        await client.close()
    wall = time.perf_counter() - started
    return [r for r in results if r is not None], wall


def run_requests(
    base_url: str,
    model: str,
    questions: Sequence[Question],
    *,
    concurrency: int = 1,
    after_each: Callable[[Outcome], None] | None = None,
) -> tuple[list[Outcome], float]:
    """Ask every question of ``questions`` as ``model``; returns the outcomes and wall seconds.

    At most ``concurrency`` requests are in flight; ``after_each`` runs as each one finishes
    (with ``concurrency=1`` it sees exactly that request's side effects in the world).
    """
    return asyncio.run(_run(base_url, model, questions, concurrency, after_each))
