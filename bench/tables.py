"""Renders every benchmark's results as the printed tables, and the targets summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.clients import ClientCpu
from bench.cpu import STAGES, StageCpu
from bench.extraction import ExtractorScore
from bench.httpbench import (
    BUDGET_TOKENS,
    LatencySummary,
    RecallSummary,
    ThroughputSummary,
)
from bench.loss import BUCKETS, Loss
from bench.metrics import p50, p95
from bench.report import fmt, section, table

HANG_SLACK_MS = 50.0
RECALL_GOALS = (("hotpotqa", "HotpotQA", 0.95), ("squad", "SQuAD answerable", 0.80))


def _ms(value: float) -> str:
    return fmt(value, 0)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.0%}"


def latency_section(rows: Sequence[LatencySummary], label: str = "tier") -> str:
    """End-to-end latency next to the critical path, by stage."""
    headers = [
        label, "n", "pages read", "e2e p50", "e2e p95", "crit p50", "crit p95", "p50 vs crit",
        "overhead p50", "search", "fetch+extract", "rank", "upstream", "srv CPU/req",
    ]  # fmt: skip
    body = [
        [
            s.model,
            str(s.n - s.errors) + (f" ({s.errors} err)" if s.errors else ""),
            f"{s.pages_fetched_mean:.1f}/{s.pages_requested_mean:.1f}",
            _ms(s.e2e_p50),
            _ms(s.e2e_p95),
            _ms(s.crit_p50),
            _ms(s.crit_p95),
            _pct(s.ratio - 1),
            _ms(s.overhead_p50),
            *(_ms(s.stage_p50.get(k, math.nan)) for k in ("search", "fetch_extract", "rank")),
            _ms(s.stage_p50.get("upstream", math.nan)),
            _ms(s.server_cpu_ms_per_request),
        ]
        for s in rows
    ]
    return table(headers, body)


def hang_section(rows: Sequence[LatencySummary]) -> str:
    """Requests that asked for a hanging page: how long the fetch stage waited."""
    headers = ["run", "fetch deadline", "requests", "hit a hang", "fetch+extract max", "e2e p50"]
    body = [
        [
            s.model,
            f"{s.fetch_cap_s * 1000:,.0f}",
            str(s.n),
            str(s.hung_requests),
            _ms(s.hung_fetch_extract_max) if s.hung_requests else "-",
            _ms(s.hung_e2e_p50),
        ]
        for s in rows
    ]
    return table(headers, body)


def throughput_section(rows: Sequence[ThroughputSummary]) -> str:
    """Requests per second with ``concurrency`` requests in flight."""
    headers = [
        "tier", "concurrency", "requests", "req/s", "pages/s", "e2e p50", "e2e p95",
        "pages read", "srv CPU/req", "srv CPU cores", "world CPU/req",
    ]  # fmt: skip
    body = [
        [
            s.model,
            str(s.concurrency),
            str(s.n) + (f" ({s.errors} err)" if s.errors else ""),
            fmt(s.requests_per_s, 2),
            fmt(s.requests_per_s * s.pages_fetched_mean, 1),
            _ms(s.e2e_p50),
            _ms(s.e2e_p95),
            fmt(s.pages_fetched_mean, 1),
            _ms(s.server_cpu_ms_per_request),
            fmt(s.server_cpu_share, 2),
            _ms(s.world_cpu_ms_per_request),
        ]
        for s in rows
    ]
    return table(headers, body)


def recall_section(rows: Sequence[RecallSummary]) -> str:
    """Evidence recall per stratum and context tokens."""
    headers = [
        "tier", "n", "pages read", "recall hotpot", "all-gold hotpot", "recall squad",
        "all-gold squad", "ctx tok p50", "ctx tok p95", "ctx tok max", "no upstream call",
    ]  # fmt: skip
    body = []
    for s in rows:
        hotpot, squad = s.strata["hotpotqa"], s.strata["squad"]
        body.append(
            [
                s.model,
                str(s.n) + (f" ({s.errors} err)" if s.errors else ""),
                fmt(s.pages_fetched_mean, 1),
                f"{fmt(hotpot.recall, 3)} ({hotpot.found}/{hotpot.gold})",
                fmt(hotpot.complete_share, 2),
                f"{fmt(squad.recall, 3)} ({squad.found}/{squad.gold})",
                fmt(squad.complete_share, 2),
                _ms(s.ctx_tokens_p50),
                _ms(s.ctx_tokens_p95),
                _ms(s.ctx_tokens_max),
                str(s.missing_prompts),
            ]
        )
    return table(headers, body)


def loss_section(rows: Sequence[Loss]) -> str:
    """Gold sentences by where they were lost (share of the stratum's gold sentences)."""
    headers = ["tier", "stratum", "gold", *BUCKETS]
    body = [
        [
            r.tier,
            r.stratum,
            str(r.gold),
            *(f"{r.buckets[b] / r.gold:.0%} ({r.buckets[b]})" if r.gold else "-" for b in BUCKETS),
        ]
        for r in rows
    ]
    return table(headers, body)


def host_note(rows: Sequence[LatencySummary]) -> str:
    """One line: which hosts the pages came from (all sequential runs pooled)."""
    weights: dict[str, float] = {}
    for s in rows:
        for host, share in s.host_share.items():
            weights[host] = weights.get(host, 0.0) + share * s.pages_requested_mean * s.n
    total = sum(weights.values())
    if not total:
        return ""
    parts = [f"{host} {w / total:.0%}" for host, w in sorted(weights.items(), key=lambda x: -x[1])]
    return "pages requested by host: " + ", ".join(parts)


def cpu_section(rows: Sequence[StageCpu], http_cpu: dict[str, float]) -> str:
    """In-process CPU per request by stage (medians), totals p50/p95, HTTP server CPU."""
    headers = [
        "request", "pages", *STAGES, "total p50", "total p95", "extract share", "HTTP srv CPU/req",
    ]  # fmt: skip
    body = []
    for r in rows:
        totals = [s["total"] for s in r.samples]
        extract_sum = sum(s.get("extract", 0.0) for s in r.samples)
        share = extract_sum / sum(totals) if totals and sum(totals) else math.nan
        body.append(
            [
                r.label,
                f"{r.pages_mean:.1f}",
                *(fmt(p50([s.get(k, math.nan) for s in r.samples]), 1) for k in STAGES),
                fmt(p50(totals), 1),
                fmt(p95(totals), 1),
                f"{share:.0%}" if not math.isnan(share) else "-",
                _ms(http_cpu.get(r.label, math.nan)),
            ]
        )
    return table(headers, body)


def clients_section(rows: Sequence[ClientCpu]) -> str:
    """CPU per call of the network clients."""
    headers = ["client call", "calls", "CPU ms p50", "CPU ms p95", "TCP connections opened"]
    body = [
        [
            r.name,
            str(r.calls),
            fmt(r.p50, 2),
            fmt(r.p95, 2),
            "-" if r.connections_opened is None else f"{r.connections_opened} of {r.calls + 3}",
        ]
        for r in rows
    ]
    return table(headers, body)


def cpu_estimate(
    cpu: Sequence[StageCpu],
    clients: Sequence[ClientCpu],
    searches: float,
    http_ms: float,
    same_questions: int,
) -> str:
    """One line: in-process CPU + the clients' CPU for a 10-page request, vs measured.

    The in-process figure is the median over the first ``same_questions`` questions: the
    ones the HTTP sweep point asked, so both sides read the same pages.
    """
    ten = next((r for r in cpu if r.label == "10-pages"), None)
    by_name = {c.name: c.p50 for c in clients}
    fetch, search = by_name.get("fetch, gzip"), by_name.get("search (1 query)")
    upstream = by_name.get("upstream (openai SDK)")
    if ten is None or fetch is None or search is None or upstream is None:
        return ""
    samples = ten.samples[:same_questions] or ten.samples
    inproc = p50([s["total"] for s in samples])
    network = 10 * fetch + searches * search + upstream
    return (
        f"10-page request, first {len(samples)} questions: in-process {inproc:.1f} ms + "
        f"network clients (10 x fetch {fetch:.1f} + {searches:.1f} x search {search:.1f} + "
        f"upstream {upstream:.1f} = {network:.1f}) = {inproc + network:.1f} ms; measured over "
        f"HTTP (sweep-10, same questions) {fmt(http_ms, 1)} ms; the rest is uvicorn/Litestar, "
        "thread hand-offs and task groups."
    )


def extraction_section(rows: Sequence[ExtractorScore]) -> str:
    """Token F1 against the pages' clean text, and CPU time per page."""
    headers = [
        "extractor", "pages", "empty", "F1 mean", "F1 median", "precision", "recall",
        "ms p50", "ms p95",
    ]  # fmt: skip
    body = [
        [
            r.name,
            str(r.pages),
            str(r.empty),
            fmt(r.f1_mean, 3),
            fmt(r.f1_median, 3),
            fmt(r.precision_mean, 3),
            fmt(r.recall_mean, 3),
            fmt(r.ms_p50, 1),
            fmt(r.ms_p95, 1),
        ]
        for r in rows
    ]
    return table(headers, body)


@dataclass
class Target:
    """One line of the targets summary."""

    name: str
    measured: str
    goal: str
    within: bool | None


def targets_section(targets: Sequence[Target]) -> str:
    """The targets the engine is tuned against, with what was measured."""
    body = [
        [t.name, t.measured, t.goal, "-" if t.within is None else ("yes" if t.within else "NO")]
        for t in targets
    ]
    return table(["target", "measured", "goal", "within"], body)


def collect_targets(
    cpu: Sequence[StageCpu],
    http_cpu: dict[str, float],
    latency: Sequence[LatencySummary],
    sweep: Sequence[LatencySummary],
    recall: Sequence[RecallSummary],
    probes: Sequence[LatencySummary] = (),
) -> list[Target]:
    """Compare the measured figures with the targets of the benchmark issue."""
    out: list[Target] = []
    ten = next((r for r in cpu if r.label == "10-pages"), None)
    if ten is not None:
        median = p50([s["total"] for s in ten.samples])
        out.append(
            Target(
                "CPU, 10-page request, median (in-process)",
                f"{median:.1f} ms",
                "<= 40 ms",
                median <= 40,
            )
        )
    if "10-pages" in http_cpu:
        value = http_cpu["10-pages"]
        out.append(
            Target(
                "CPU, 10-page request over HTTP (server process tree)",
                f"{value:.1f} ms",
                "<= 40 ms",
                value <= 40,
            )
        )
    for s in latency:
        out.append(
            Target(
                f"e2e p50 vs critical path p50, {s.model}",
                f"{s.e2e_p50:,.0f} vs {s.crit_p50:,.0f} ms ({s.ratio - 1:+.0%})",
                "within +10%",
                s.ratio <= 1.10,
            )
        )
    hung = [s for s in (*latency, *probes, *sweep) if s.hung_requests]
    if hung:
        worst = max(hung, key=lambda s: s.hung_fetch_extract_max - s.fetch_cap_s * 1000)
        excess = worst.hung_fetch_extract_max - worst.fetch_cap_s * 1000
        count = sum(s.hung_requests for s in hung)
        out.append(
            Target(
                "hanging page: fetch stage past its deadline (worst run)",
                f"{excess:+,.0f} ms ({worst.model}; {count} requests hit a hang)",
                f"<= 0 (+{HANG_SLACK_MS:.0f} ms slack)",
                excess <= HANG_SLACK_MS,
            )
        )
    by_pages = {int(s.model.rsplit("-", 1)[-1]): s for s in sweep}
    if 10 in by_pages and 20 in by_pages:
        growth = by_pages[20].e2e_p50 / by_pages[10].e2e_p50 - 1
        out.append(
            Target(
                "latency growth p50, 10 -> 20 pages read",
                f"{growth:+.0%}",
                "<= +15%",
                growth <= 0.15,
            )
        )
    for r in recall:
        for name, label, goal in RECALL_GOALS:
            entry = r.strata[name]
            if not entry.gold:
                continue
            value = entry.recall_in_budget
            out.append(
                Target(
                    f"evidence recall {label}, {r.model}",
                    f"{value:.3f} (ctx p95 {r.ctx_tokens_p95:,.0f} tok)",
                    f">= {goal:.2f} at <= {BUDGET_TOKENS:,} tok",
                    value >= goal,
                )
            )
    return out


__all__ = [
    "Target",
    "clients_section",
    "collect_targets",
    "cpu_estimate",
    "cpu_section",
    "extraction_section",
    "hang_section",
    "host_note",
    "latency_section",
    "loss_section",
    "recall_section",
    "section",
    "targets_section",
    "throughput_section",
]
