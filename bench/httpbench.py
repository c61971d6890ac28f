"""End-to-end benchmarks over HTTP: latency, throughput, the pages sweep and evidence recall.

All requests go through the official ``openai`` SDK to Footnote in its own process, which
searches the fake SearXNG, fetches from the simulated web and writes with the fake upstream in
a third process (``bench.world``).

* **Latency** (and the sweep) run one request at a time. After each one the world is drained,
  so the pages that request fetched are known exactly, with their injected delays. The
  *critical path* of a request is what no engine could avoid:
  ``search`` (server-timing) + the page fetch actually waited for longest + ``upstream``
  (+ ``rewrite``, core's query-rewriting call)
  (server-timing). Footnote exposes no per-page timing, so the fetch part comes from the
  simulated web's log: a page was waited for ``min(injected delay, time until the response
  went out or the client hung up)`` - all of its delay if it was delivered, less if the
  engine gave up on it (straggler cut, deadline) - capped at the fetch deadline
  (min(per-fetch timeout, tier deadline)); with follow-up searches, each burst of queries
  starts a fetch round and the rounds add up.
* **Throughput** keeps ``concurrency`` requests in flight and divides requests by wall time.
* **Retrieval** runs with the injected latency off (nothing misses a deadline), several at a
  time, and scores the context Footnote sent upstream (the fake upstream's log): evidence
  recall = share of gold sentences found verbatim (whitespace-normalised) in it, and context
  tokens = ceil(characters of that user message / 4).

Server CPU is the CPU time of the Footnote process and its children (an extraction process
pool; ``bench.child.cpu_seconds``) across a run, divided by its requests.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.client import Outcome, run_requests
from bench.metrics import (
    context_tokens,
    critical_path_ms,
    fetch_rounds,
    gold_found,
    mean,
    p50,
    p95,
)
from bench.questions import STRATA, stratum
from bench.service import Service
from bench.world import World
from tests.fakes.simweb import Question

# A context budget of 2,500 tokens at 4 characters a token.
BUDGET_TOKENS = 2500
_QUESTION_LINE = re.compile(r"^Question:[ \t]*(.*)$", re.M)


@dataclass
class Run:
    """The outcomes of one batch of requests and what it cost."""

    model: str
    outcomes: list[Outcome]
    wall_s: float
    concurrency: int
    server_cpu_s: float
    world_cpu_s: float

    @property
    def ok(self) -> list[Outcome]:
        """The successful outcomes."""
        return [o for o in self.outcomes if o.ok]

    def server_cpu_ms_per_request(self) -> float:
        """Footnote's CPU per request over the run, in ms."""
        return self.server_cpu_s * 1000 / max(1, len(self.outcomes))


def run_batch(
    world: World,
    service: Service,
    base_url: str,
    model: str,
    questions: Sequence[Question],
    *,
    concurrency: int,
    drain_each: bool,
) -> Run:
    """Ask ``questions`` as ``model``; with ``drain_each`` (sequential only) attach world logs."""
    world.drain()

    def attach(outcome: Outcome) -> None:
        drained = world.drain()
        outcome.page_latencies = drained.pages
        outcome.search_times = drained.search_times
        outcome.prompt = drained.prompts[-1] if drained.prompts else None

    server0, world0 = service.cpu(), world.cpu()
    outcomes, wall = run_requests(
        base_url,
        model,
        questions,
        concurrency=1 if drain_each else concurrency,
        after_each=attach if drain_each else None,
    )
    server1, world1 = service.cpu(), world.cpu()
    if not drain_each:
        prompts = _prompts_by_question(world.drain().prompts)
        by_id = {q["id"]: q for q in questions}
        for outcome in outcomes:
            outcome.prompt = prompts.get(" ".join(by_id[outcome.qid]["question"].split()))
    return Run(
        model=model,
        outcomes=outcomes,
        wall_s=wall,
        concurrency=1 if drain_each else concurrency,
        server_cpu_s=server1 - server0,
        world_cpu_s=world1 - world0,
    )


def hang_probe(
    world: World,
    service: Service,
    base_url: str,
    model: str,
    questions: Sequence[Question],
    *,
    restore_latency: bool,
) -> Run:
    """Ask each question twice: latency off to learn its pages, then with its top page hanging.

    The second request is the probe: every page keeps its injected delay except the first one
    the request asked for, which hangs. Only the probes are returned.
    """
    outcomes: list[Outcome] = []
    wall = server_cpu = world_cpu = 0.0
    try:
        for question in questions:
            world.set_latency(False)
            learn = run_batch(
                world, service, base_url, model, [question], concurrency=1, drain_each=True
            )
            first = learn.outcomes[0].page_latencies if learn.outcomes else []
            urls = [page[0] for page in first]
            if not urls:
                continue
            world.hang(urls[:1])
            world.set_latency(True)
            probe = run_batch(
                world, service, base_url, model, [question], concurrency=1, drain_each=True
            )
            world.hang([])
            outcomes.extend(probe.outcomes)
            wall += probe.wall_s
            server_cpu += probe.server_cpu_s
            world_cpu += probe.world_cpu_s
    finally:
        world.hang([])
        world.set_latency(restore_latency)
    return Run(f"{model}, top page hung", outcomes, wall, 1, server_cpu, world_cpu)


def _prompts_by_question(prompts: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for prompt in prompts:
        found = _QUESTION_LINE.search(prompt)
        if found:
            out[" ".join(found.group(1).split())] = prompt
    return out


def cycle(questions: Sequence[Question], n: int) -> list[Question]:
    """The first ``n`` questions, repeating the list if it is shorter."""
    return list(itertools.islice(itertools.cycle(questions), n))


@dataclass
class LatencySummary:
    """Latency figures of a sequential run (ms unless named otherwise)."""

    model: str
    n: int
    errors: int
    e2e_p50: float
    e2e_p95: float
    crit_p50: float
    crit_p95: float
    overhead_p50: float
    stage_p50: dict[str, float]
    pages_fetched_mean: float
    pages_requested_mean: float
    searches_mean: float
    server_cpu_ms_per_request: float
    fetch_cap_s: float
    hung_requests: int
    hung_fetch_extract_max: float
    hung_e2e_p50: float
    wall_s: float
    host_share: dict[str, float] = field(default_factory=dict)
    per_request: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """p50 end-to-end over p50 critical path."""
        return self.e2e_p50 / self.crit_p50 if self.crit_p50 else float("nan")


def summarize_latency(run: Run, fetch_cap_s: float, hang_s: float) -> LatencySummary:
    """Latency, critical path and hang figures of a sequential run."""
    ok = run.ok
    e2e = [o.e2e_ms for o in ok]
    crit: list[float] = []
    rows: list[dict[str, Any]] = []
    hung: list[Outcome] = []
    for o in ok:
        delays = [page[1] for page in o.page_latencies]
        rounds = fetch_rounds(o.page_latencies, o.search_times)
        # Query rewriting (core) is an upstream call on the critical path too.
        upstream_ms = o.stages.get("upstream", 0.0) + o.stages.get("rewrite", 0.0)
        path = critical_path_ms(o.stages.get("search", 0.0), upstream_ms, rounds, fetch_cap_s)
        crit.append(path)
        if any(delay >= hang_s for delay in delays):
            hung.append(o)
        rows.append(
            {
                "qid": o.qid,
                "e2e_ms": round(o.e2e_ms, 1),
                "critical_ms": round(path, 1),
                "stages": o.stages,
                "pages_fetched": o.pages_fetched,
                "pages_requested": len(delays),
                "slowest_page_s": round(max(delays, default=0.0), 3),
                "longest_wait_s": round(max((max(r, default=0.0) for r in rounds), default=0.0), 3),
                "fetch_rounds": len(rounds),
            }
        )
    stages = sorted({name for o in ok for name in o.stages})
    return LatencySummary(
        model=run.model,
        n=len(run.outcomes),
        errors=len(run.outcomes) - len(ok),
        e2e_p50=p50(e2e),
        e2e_p95=p95(e2e),
        crit_p50=p50(crit),
        crit_p95=p95(crit),
        overhead_p50=p50([e - c for e, c in zip(e2e, crit, strict=True)]),
        stage_p50={name: p50([o.stages[name] for o in ok if name in o.stages]) for name in stages},
        pages_fetched_mean=mean([float(o.pages_fetched) for o in ok]),
        pages_requested_mean=mean([float(len(o.page_latencies)) for o in ok]),
        searches_mean=mean([float(o.searches) for o in ok]),
        server_cpu_ms_per_request=run.server_cpu_ms_per_request(),
        fetch_cap_s=fetch_cap_s,
        hung_requests=len(hung),
        hung_fetch_extract_max=max((o.stages.get("fetch_extract", 0.0) for o in hung), default=0.0),
        hung_e2e_p50=p50([o.e2e_ms for o in hung]),
        wall_s=run.wall_s,
        host_share=_host_share([page[0] for o in ok for page in o.page_latencies]),
        per_request=rows,
    )


def _host_share(urls: Sequence[str]) -> dict[str, float]:
    """Share of page requests per host, largest first."""
    counts = Counter(urlsplit(url).hostname or "" for url in urls)
    total = sum(counts.values())
    return {host: n / total for host, n in counts.most_common()} if total else {}


@dataclass
class ThroughputSummary:
    """Requests per second under concurrent load."""

    model: str
    concurrency: int
    n: int
    errors: int
    requests_per_s: float
    e2e_p50: float
    e2e_p95: float
    pages_fetched_mean: float
    server_cpu_ms_per_request: float
    world_cpu_ms_per_request: float
    server_cpu_share: float
    wall_s: float


def summarize_throughput(run: Run) -> ThroughputSummary:
    """Throughput figures of a concurrent run."""
    ok = run.ok
    return ThroughputSummary(
        model=run.model,
        concurrency=run.concurrency,
        n=len(run.outcomes),
        errors=len(run.outcomes) - len(ok),
        requests_per_s=len(ok) / run.wall_s if run.wall_s else float("nan"),
        e2e_p50=p50([o.e2e_ms for o in ok]),
        e2e_p95=p95([o.e2e_ms for o in ok]),
        pages_fetched_mean=mean([float(o.pages_fetched) for o in ok]),
        server_cpu_ms_per_request=run.server_cpu_ms_per_request(),
        world_cpu_ms_per_request=run.world_cpu_s * 1000 / max(1, len(run.outcomes)),
        server_cpu_share=run.server_cpu_s / run.wall_s if run.wall_s else float("nan"),
        wall_s=run.wall_s,
    )


@dataclass
class RecallStratum:
    """Evidence recall of one question stratum."""

    questions: int
    gold: int
    found: int
    found_in_budget: int
    complete: int

    @property
    def recall(self) -> float:
        """Share of gold sentences present in the context."""
        return self.found / self.gold if self.gold else float("nan")

    @property
    def recall_in_budget(self) -> float:
        """Share of gold sentences within the first 2,500 tokens of the context."""
        return self.found_in_budget / self.gold if self.gold else float("nan")

    @property
    def complete_share(self) -> float:
        """Share of questions with every gold sentence present."""
        return self.complete / self.questions if self.questions else float("nan")


@dataclass
class RecallSummary:
    """Evidence recall and context size of a run."""

    model: str
    n: int
    errors: int
    missing_prompts: int
    strata: dict[str, RecallStratum]
    ctx_tokens_p50: float
    ctx_tokens_p95: float
    ctx_tokens_max: float
    pages_fetched_mean: float
    wall_s: float


def summarize_recall(run: Run, questions: Sequence[Question]) -> RecallSummary:
    """Evidence recall per stratum and context tokens, from the prompts sent upstream."""
    by_id = {q["id"]: q for q in questions}
    strata = {name: RecallStratum(0, 0, 0, 0, 0) for name in STRATA}
    tokens: list[float] = []
    missing = 0
    for outcome in run.outcomes:
        question = by_id[outcome.qid]
        context = outcome.prompt or ""
        if outcome.prompt is None:
            missing += 1
        else:
            tokens.append(float(context_tokens(context)))
        entry = strata[stratum(question)]
        entry.questions += 1
        gold = question["gold_sentences"]
        found = gold_found(gold, context)
        entry.gold += len(gold)
        entry.found += found
        entry.found_in_budget += gold_found(gold, context, max_chars=BUDGET_TOKENS * 4)
        entry.complete += int(bool(gold) and found == len(gold))
    ok = run.ok
    return RecallSummary(
        model=run.model,
        n=len(run.outcomes),
        errors=len(run.outcomes) - len(ok),
        missing_prompts=missing,
        strata=strata,
        ctx_tokens_p50=p50(tokens),
        ctx_tokens_p95=p95(tokens),
        ctx_tokens_max=max(tokens, default=float("nan")),
        pages_fetched_mean=mean([float(o.pages_fetched) for o in ok]),
        wall_s=run.wall_s,
    )


def as_json(summary: Any) -> Any:
    """A summary dataclass as JSON-ready data (properties included where useful)."""
    data = asdict(summary)
    if isinstance(summary, RecallSummary):
        for name, entry in summary.strata.items():
            data["strata"][name].update(
                recall=entry.recall,
                recall_in_budget=entry.recall_in_budget,
                complete_share=entry.complete_share,
            )
    if isinstance(summary, LatencySummary):
        data["ratio"] = summary.ratio
    return data
