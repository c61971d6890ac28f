"""One benchmark session: the data, the servers, each benchmark's run, tables and JSON.

``python -m bench`` (``bench/__main__.py``) parses the command line and hands it to
``Bench.run``; this module orders the benchmarks so the simulated world and Footnote are
started once, prints each table as soon as its figures exist and saves everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from app.tiers import TIERS
from bench import questions as sampling
from bench.basis import TARGETS as BASIS_TARGETS
from bench.basis import as_json as basis_json
from bench.basis import basis_section, basis_targets, confidence_section, measure_basis
from bench.child import ChildError
from bench.clients import ClientCpu, measure_clients
from bench.cpu import StageCpu, measure_stage_cpu
from bench.extraction import measure_extraction, real_pages
from bench.httpbench import (
    LatencySummary,
    RecallSummary,
    ThroughputSummary,
    as_json,
    cycle,
    hang_probe,
    run_batch,
    summarize_latency,
    summarize_recall,
    summarize_throughput,
)
from bench.load import LoadRun, error_lines, load_section, missed_targets, run_load
from bench.loss import Loss, recall_loss
from bench.plot import plot_latency_vs_pages
from bench.report import section
from bench.service import Service, ServiceSpec, sweep_model, sweep_tier
from bench.tables import (
    clients_section,
    collect_targets,
    cpu_estimate,
    cpu_section,
    extraction_section,
    hang_section,
    host_note,
    latency_section,
    loss_section,
    recall_section,
    targets_section,
    throughput_section,
)
from bench.world import LatencyModel, World, WorldSpec
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import Page, Question, SimulatedWeb, load_pages, load_questions

BENCHMARKS = (
    "extraction",
    "cpu",
    "retrieval",
    "basis",
    "latency",
    "sweep",
    "throughput",
    "load",
    "index",
)
# Asked for by name only: ``load`` starts its own server processes and takes minutes.
# ``load`` and ``index`` (local index at 1k-100k documents) run only when named.
DEFAULT_BENCHMARKS = tuple(b for b in BENCHMARKS if b not in ("load", "index"))
HTTP_BENCHMARKS = frozenset({"retrieval", "latency", "sweep", "throughput"})


@dataclass(frozen=True)
class Sizes:
    """How many questions/requests each benchmark uses."""

    questions: int
    latency_questions: int
    sweep_questions: int
    throughput_requests: int
    cpu_questions: int
    extraction_pages: int | None
    hang_probes: int


DEFAULT = Sizes(100, 12, 8, 24, 12, None, 1)
QUICK = Sizes(24, 4, 3, 16, 4, 30, 1)


def sizes_for(args: argparse.Namespace) -> Sizes:
    """The sample sizes: ``--quick`` or the defaults, overridden by explicit options."""
    base = QUICK if args.quick else DEFAULT
    pick = {
        name: getattr(args, name) if getattr(args, name) is not None else getattr(base, name)
        for name in Sizes.__dataclass_fields__
    }
    return Sizes(**pick)


def log(message: str) -> None:
    """A progress line on stderr (tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _emit(title: str, body: str, notes: list[str] | None = None) -> None:
    print(section(title, body, notes or []), flush=True)


class Bench:
    """One benchmark session: what to run, the data, and the results gathered so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Resolve options; nothing is started yet."""
        self.args = args
        self.sizes = sizes_for(args)
        self.selected = tuple(args.benchmarks) or DEFAULT_BENCHMARKS
        self.tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
        self.sweep_pages = sorted({int(p) for p in args.pages.split(",") if p.strip()})
        self.model = LatencyModel(
            hang_fraction=args.hang_fraction, upstream_s=args.upstream_delay, seed=args.seed
        )
        self.suffix = "-quick" if args.quick else ""
        self.results: dict[str, Any] = {}
        self.cpu_rows: list[StageCpu] = []
        self.http_cpu: dict[str, float] = {}
        self.clients: list[ClientCpu] = []
        self.loss_rows: list[Loss] = []
        self.latency: list[LatencySummary] = []
        self.sweep: list[LatencySummary] = []
        self.probes: list[LatencySummary] = []
        self.recall: list[RecallSummary] = []
        self._pages: list[Page] | None = None
        self._local: tuple[SimulatedWeb, FakeSearxng] | None = None
        all_questions: list[Question] = load_questions()
        self.questions = sampling.sample(all_questions, self.sizes.questions, seed=args.seed)

    @property
    def pages(self) -> list[Page]:
        """The corpus pages (loaded once, on first use)."""
        if self._pages is None:
            self._pages = load_pages()
        return self._pages

    def local(self) -> tuple[SimulatedWeb, FakeSearxng]:
        """An in-process simulated web (started only so URLs have a port) and its search."""
        if self._local is None:
            web = SimulatedWeb(pages=self.pages).start()
            self._local = (web, FakeSearxng(web))
        return self._local

    def header(self) -> None:
        """Print what is being measured and under which conditions."""
        counts = {name: 0 for name in sampling.STRATA}
        for q in self.questions:
            counts[sampling.stratum(q)] += 1
        lines = [
            f"benchmarks: {', '.join(self.selected)}{' (quick)' if self.args.quick else ''}",
            f"questions: {len(self.questions)} dev ("
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f"); latency {self.sizes.latency_questions}/tier, sweep "
            f"{self.sizes.sweep_questions}/point, throughput {self.sizes.throughput_requests}"
            f"/tier at concurrency {self.args.concurrency}, cpu {self.sizes.cpu_questions}",
            f"latency model: {'OFF' if self.args.no_latency else self.model.describe()}",
            "Footnote: default settings, page cache "
            + ("on (--page-cache)" if self.args.page_cache else "off (--page-cache keeps it)"),
        ]
        print("# Footnote benchmarks\n\n" + "\n".join(f"- {line}" for line in lines) + "\n")
        self.results["config"] = {
            "args": {k: str(v) for k, v in vars(self.args).items()},
            "sizes": asdict(self.sizes),
            "latency_model": asdict(self.model) | {"sigma": self.model.sigma},
            "strata": counts,
        }

    def run(self) -> None:
        """Run the selected benchmarks in an order that needs the servers only once."""
        self.header()
        try:
            if "extraction" in self.selected:
                self.extraction()
            if "cpu" in self.selected:
                self.cpu()
            if "retrieval" in self.selected:
                self.loss()
            if "basis" in self.selected:
                self.basis()
            if HTTP_BENCHMARKS & set(self.selected):
                self.http()
            if "load" in self.selected:
                self.load()
            if "index" in self.selected:
                self.index()
        finally:
            if self._local is not None:
                self._local[0].stop()
        self.targets()
        self.save()

    def index(self) -> None:
        """The local index (SQLite FTS5): build rate, size and query latency by size."""
        from bench import index as bench_index

        sizes = bench_index.parse_sizes(
            self.args.index_sizes or ("1000" if self.args.quick else "1000,10000")
        )
        pages = bench_index.load_pages()
        questions = bench_index.load_questions()
        seed_s = bench_index.measure_seed()
        runs = []
        for size in sizes:
            runs.append(bench_index.run_size(pages, questions, size, self.args.index_workers, log))
            self.results["index"] = {"seed_s": seed_s, "runs": [asdict(r) for r in runs]}
        _emit(
            "Local index (SQLite FTS5): build, size on disk, query latency",
            bench_index.index_section(runs, seed_s),
            bench_index.index_notes(self.args.index_workers),
        )

    def extraction(self) -> None:
        """Extraction quality and time on the real pages."""
        pages = real_pages(self.pages, self.sizes.extraction_pages)
        log(f"extraction: {len(pages)} site-5 pages, two extractors")
        rows = measure_extraction(pages)
        self.results["extraction"] = [asdict(r) for r in rows]
        _emit(
            "Extraction on real pages (site 5): token F1 vs the page's clean text",
            extraction_section(rows),
            ["time = thread CPU per page; F1 = bag of lower-cased \\w+ tokens."],
        )

    def cpu(self) -> None:
        """CPU per request by stage, in-process."""
        questions = self.questions[: self.sizes.cpu_questions]
        log(f"cpu: {len(questions)} questions x 6 request shapes, in-process")
        self.cpu_rows = measure_stage_cpu(*self.local(), questions)
        self.results["cpu"] = [asdict(r) for r in self.cpu_rows]

    def basis(self) -> None:
        """Citations, excerpts, confidence and abstention of the answers (in-process)."""
        tiers = [TIERS[t] for t in self.tiers if t in TIERS]
        log(f"basis: {len(self.questions)} questions x {len(tiers)} tiers x 3 modes, in-process")
        rows = measure_basis(*self.local(), self.questions, tiers)
        self.results["basis"] = basis_json(rows)
        _emit(
            "Basis: citations and excerpts (answerable questions)",
            basis_section(rows),
            [
                "upstream = a fake model reading the prompt's sources with Footnote's reader; "
                "quoting = a fake model quoting the sentences that share most words with the "
                "question (bench/basis.py); "
                "precision = cited gold pages / cited URLs; recall = gold pages cited / gold "
                "pages; gold in sources = gold pages among the sources the writer was given "
                "(recall's ceiling); excerpt support = gold sentences overlapping a basis "
                "excerpt; verbatim "
                "= excerpts found in the fetched text; unfetched = citations of pages not "
                "fetched (must be 0)."
            ],
        )
        _emit(
            "Basis: accuracy per confidence level and abstention",
            confidence_section(rows),
            [
                "acc = answers containing a gold answer / answerable questions at that level "
                "(yes/no answers left out); unans. at h/m/l = unanswerable SQuAD questions "
                "given each level.",
                BASIS_TARGETS,
            ],
        )
        _emit("Basis: targets (issue 4)", targets_section(basis_targets(rows)))

    def loss(self) -> None:
        """Where the gold sentences that miss the context are lost (in-process)."""
        log(f"retrieval: recall loss, {len(self.questions)} questions in-process")
        tiers = [TIERS[t] for t in self.tiers if t in TIERS]
        self.loss_rows = recall_loss(*self.local(), self.questions, tiers)
        self.results["recall_loss"] = [asdict(r) for r in self.loss_rows]

    def http(self) -> None:
        """Start the world and Footnote, run the HTTP benchmarks, stop everything."""
        log("starting the simulated world and Footnote (child processes)")
        world = World(WorldSpec(self.model)).start()
        service: Service | None = None
        try:
            service = Service(
                ServiceSpec(
                    world.searxng_url,
                    world.upstream_url,
                    tuple(self.sweep_pages),
                    page_cache=self.args.page_cache,
                )
            ).start()
            self.results["service_settings"] = service.settings
            self._http_benchmarks(world, service)
        finally:
            if service is not None:
                service.stop()
            world.stop()

    def _http_benchmarks(self, world: World, service: Service) -> None:
        steps: list[tuple[str, Callable[[], None]]] = []
        if "cpu" in self.selected:
            steps.append(("cpu (network clients)", lambda: self.client_cpu(world)))
        if "retrieval" in self.selected:
            steps.append(("retrieval", lambda: self.retrieval(world, service)))
        steps.append(("latency on", lambda: world.set_latency(not self.args.no_latency)))
        if "latency" in self.selected:
            steps.append(("latency", lambda: self.latency_runs(world, service)))
        if "sweep" in self.selected:
            steps.append(("sweep", lambda: self.sweep_runs(world, service)))
        if "throughput" in self.selected:
            steps.append(("throughput", lambda: self.throughput(world, service)))
        for name, step in steps:
            try:
                step()
            except (ChildError, OSError, EOFError) as exc:
                # A crashed child is a finding, not a reason to lose the other figures.
                codes = f"Footnote exit code {service.exitcode}, world {world.exitcode}"
                message = f"{name} stopped: a child process failed ({exc}; {codes})"
                log(message)
                self.results.setdefault("errors", []).append(message)
                _emit("Benchmark stopped", message, ["Later HTTP benchmarks were skipped."])
                return

    def client_cpu(self, world: World) -> None:
        """CPU per call of the network clients, latency off."""
        log("cpu: network clients, 30 calls each, latency off")
        world.set_latency(False)
        self.clients = measure_clients(world, self.questions)
        self.results["clients"] = [asdict(c) | {"p50": c.p50, "p95": c.p95} for c in self.clients]

    def _cap(self, service: Service, deadline_s: float) -> float:
        return min(float(service.settings.get("fetch_timeout_s", deadline_s)), deadline_s)

    def retrieval(self, world: World, service: Service) -> None:
        """Evidence recall and context tokens per tier, latency off."""
        world.set_latency(False)
        for tier in self.tiers:
            log(f"retrieval: {tier}, {len(self.questions)} questions, latency off")
            run = run_batch(
                world,
                service,
                service.tiers_url,
                tier,
                self.questions,
                concurrency=self.args.retrieval_concurrency,
                drain_each=False,
            )
            self.recall.append(summarize_recall(run, self.questions))
        self.results["retrieval"] = [as_json(s) for s in self.recall]
        _emit(
            "Evidence recall (latency off): gold sentences in the context sent upstream",
            recall_section(self.recall),
            [
                "recall = found/gold sentences (whitespace-normalised substring of the last "
                "user message sent upstream); all-gold = share of questions with every gold "
                "sentence; ctx tok = ceil(chars/4) of that message; 'no upstream call' = "
                "no sources, so no prompt (mostly unanswerable SQuAD)."
            ],
        )
        if self.loss_rows:
            _emit(
                "Where recall is lost (in-process, the same pages and hits as above)",
                loss_section(self.loss_rows),
                [
                    "Each gold sentence counts in the first bucket that fits, left to right "
                    "(see bench/loss.py)."
                ],
            )

    def latency_runs(self, world: World, service: Service) -> None:
        """Sequential end-to-end latency per tier, next to the critical path."""
        questions = self.questions[: self.sizes.latency_questions]
        for tier in self.tiers:
            log(f"latency: {tier}, {len(questions)} sequential requests")
            run = run_batch(
                world, service, service.tiers_url, tier, questions, concurrency=1, drain_each=True
            )
            cap = self._cap(service, TIERS[tier].fetch_deadline_s)
            summary = summarize_latency(run, cap, self.model.hang_s)
            self.latency.append(summary)
            self.http_cpu[tier] = summary.server_cpu_ms_per_request
        probes = self.questions[: self.sizes.hang_probes]
        for tier in self.tiers if probes else []:
            log(f"latency: {tier}, hang probe ({len(probes)} request(s) with the top page hung)")
            run = hang_probe(
                world,
                service,
                service.tiers_url,
                tier,
                probes,
                restore_latency=not self.args.no_latency,
            )
            cap = self._cap(service, TIERS[tier].fetch_deadline_s)
            self.probes.append(summarize_latency(run, cap, self.model.hang_s))
        self.results["latency"] = [as_json(s) for s in self.latency]
        self.results["hang_probe"] = [as_json(s) for s in self.probes]
        _emit(
            "Latency per tier (sequential, ms)",
            latency_section(self.latency),
            [
                "crit = search + longest page wait per fetch round (from the simulated web's "
                "log: min(injected delay, until delivered or abandoned), capped at min(per-fetch "
                "timeout, tier deadline)) + upstream; stage columns are server-timing p50s; "
                "pages read = fetched/requested; srv CPU/req = Footnote CPU (its process tree) "
                "/ requests."
            ],
        )
        _emit(
            "Hanging pages (sequential runs)",
            hang_section([*self.latency, *self.probes]),
            [
                "'top page hung' = the request's first page made to hang (60 s), every "
                "other page with its usual delay; fetch deadline = min(per-fetch timeout, "
                "tier deadline).",
                host_note([*self.latency, *self.sweep]),
            ],
        )

    def sweep_runs(self, world: World, service: Service) -> None:
        """Latency against pages read, and the plot."""
        questions = self.questions[: self.sizes.sweep_questions]
        for pages in self.sweep_pages:
            model = sweep_model(pages)
            log(f"sweep: {pages} pages, {len(questions)} sequential requests")
            run = run_batch(
                world, service, service.sweep_url, model, questions, concurrency=1, drain_each=True
            )
            summary = summarize_latency(
                run, self._cap(service, sweep_tier(pages).fetch_deadline_s), self.model.hang_s
            )
            self.sweep.append(summary)
            if pages == 10:
                self.http_cpu["10-pages"] = summary.server_cpu_ms_per_request
        self.results["sweep"] = [as_json(s) for s in self.sweep]
        path = self.args.out / f"latency_vs_pages{self.suffix}.png"
        message = plot_latency_vs_pages(
            self.sweep_pages,
            [s.e2e_p50 for s in self.sweep],
            [s.e2e_p95 for s in self.sweep],
            [s.crit_p50 for s in self.sweep],
            [s.server_cpu_ms_per_request for s in self.sweep],
            path,
        )
        _emit(
            "Latency vs pages read (sequential, ms)",
            latency_section(self.sweep, "pages"),
            [
                "sweep-N = base tier reading N pages, search asking ceil(N/10) SearXNG "
                "result pages.",
                message,
            ],
        )
        _emit("Hanging pages (sweep)", hang_section(self.sweep))

    def throughput(self, world: World, service: Service) -> None:
        """Requests per second under concurrent load."""
        rows: list[ThroughputSummary] = []
        requests = cycle(self.questions, self.sizes.throughput_requests)
        for tier in self.tiers:
            log(f"throughput: {tier}, {len(requests)} requests at {self.args.concurrency}")
            run = run_batch(
                world,
                service,
                service.tiers_url,
                tier,
                requests,
                concurrency=self.args.concurrency,
                drain_each=False,
            )
            rows.append(summarize_throughput(run))
        self.results["throughput"] = [asdict(r) for r in rows]
        _emit(
            "Throughput (2 cores; one Footnote process)",
            throughput_section(rows),
            ["srv CPU cores = Footnote CPU seconds / wall seconds (1.0 = one core busy)."],
        )

    def load(self) -> None:
        """Concurrent streaming clients against ``python -m app``: 1 worker, then N + Redis."""
        from tests.fakes.redis_server import RedisServer

        args = self.args
        workers = [int(w) for w in str(args.load_workers).split(",") if w.strip()]
        log("load: starting the simulated world (child process)")
        world = World(WorldSpec(self.model)).start()
        runs: list[LoadRun] = []
        try:
            world.set_latency(not args.no_latency)
            world.set_stream_delay(args.load_stream_delay)
            for n in workers:
                redis = RedisServer().start() if n > 1 else None
                label = f"{n} worker{'s' if n > 1 else ''}" + (" + Redis" if redis else "")
                log(f"load: {label}, {args.load_clients} streams at once, model {args.load_model}")
                try:
                    run = run_load(
                        world,
                        self.questions,
                        label=label,
                        clients=args.load_clients,
                        workers=n,
                        model=args.load_model,
                        redis_url=redis.url if redis else None,
                    )
                finally:
                    if redis is not None:
                        redis.stop()
                runs.append(run)
                missed = missed_targets(run)
                log(f"load: {label}: " + (", ".join(missed) if missed else "all targets met"))
        finally:
            world.stop()
        self.results["load"] = [asdict(r) | {"requests_per_s": r.requests_per_s} for r in runs]
        _emit(
            f"Load: {args.load_clients} concurrent streams against python -m app (ms)",
            load_section(runs),
            [
                "All streams start together (one connection each, httpx.AsyncClient); TTFT = "
                "first content delta, done = [DONE]; req/s = completed / wall time of the burst; "
                "pages/req = usage.num_pages_fetched of the completed streams (the tier's page "
                "budget unless its fetch deadline cuts pages short); "
                "srv cores = server CPU s / wall s (world cores: the fakes', same 2 cores); "
                "load avg = the machine's 1-minute load average at the end of the burst (above "
                "2, the run was starved of CPU by other work); peak RSS = sum over the server's "
                "process tree (shared pages counted per process), PSS = the same with shared pages "
                "split (sampled every 100 ms from /proc); upstream streams "
                f"{args.load_stream_delay * 1000:g} ms between chunks; page cache off.",
                *error_lines(runs),
            ],
        )

    def targets(self) -> None:
        """Print the CPU table (now that HTTP CPU is known) and the targets."""
        if self.cpu_rows:
            _emit(
                "CPU per request by stage (in-process, ms; stage columns are medians)",
                cpu_section(self.cpu_rows, self.http_cpu),
                [
                    "No network, no waiting: the service's own research -> prompt -> finalize "
                    "path over in-memory search/fetch (see bench/cpu.py). HTTP srv CPU/req = "
                    "Footnote's CPU (process and children) per request in the sequential HTTP runs "
                    "(10-pages: sweep-10), i.e. with uvicorn, HTTP clients and the SDK."
                ],
            )
        if self.clients:
            sweep10 = next((s for s in self.sweep if s.model == sweep_model(10)), None)
            planned = float(getattr(TIERS["base"], "max_queries", 1))
            searches = sweep10.searches_mean if sweep10 else planned
            estimate = cpu_estimate(
                self.cpu_rows,
                self.clients,
                searches,
                self.http_cpu.get("10-pages", math.nan),
                self.sizes.sweep_questions,
            )
            _emit(
                "Network client CPU per call (bench process, latency off)",
                clients_section(self.clients),
                [line for line in (estimate,) if line],
            )
        targets = collect_targets(
            self.cpu_rows, self.http_cpu, self.latency, self.sweep, self.recall, self.probes
        )
        self.results["targets"] = [asdict(t) for t in targets]
        if targets:
            _emit("Targets", targets_section(targets))

    def save(self) -> None:
        """Write every result as JSON."""
        self.args.out.mkdir(parents=True, exist_ok=True)
        path = self.args.out / f"results{self.suffix}.json"
        path.write_text(json.dumps(_finite(self.results), indent=1) + "\n")
        log(f"results written to {path}")


def _finite(value: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
