"""``python -m bench``: run the simulated-web benchmarks and print their tables.

Sub-benchmarks (all by default): ``extraction``, ``cpu``, ``retrieval``, ``basis``, ``latency``,
``sweep``, ``throughput``; ``load`` (200 concurrent streams against ``python -m app``) and
``index`` (the local index at 1k/10k documents, ``--index-sizes`` for 100k) only
when named. Results go to ``--out`` as JSON (and the sweep's PNG); the exit
status is 0 whatever the figures are: benchmarks measure, tests assert.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.runner import BENCHMARKS, Bench, log


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see ``bench/README.md``)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: all but load)",
    )
    p.add_argument("--quick", action="store_true", help="small samples, about 2 minutes")
    p.add_argument(
        "--questions", type=int, help="dev questions for retrieval and basis (default 100)"
    )
    p.add_argument("--latency-questions", type=int, help="sequential requests per tier (12)")
    p.add_argument("--sweep-questions", type=int, help="sequential requests per sweep point (8)")
    p.add_argument("--throughput-requests", type=int, help="requests per tier under load (24)")
    p.add_argument("--cpu-questions", type=int, help="questions for the CPU stages (12)")
    p.add_argument("--hang-probes", type=int, help="requests per tier with a hung page (1)")
    p.add_argument("--extraction-pages", type=int, help="site-5 pages to extract (all 130)")
    p.add_argument("--tiers", default="speed,lite,base,core", help="comma-separated models")
    p.add_argument("--pages", default="5,10,20,40", help="pages read in the sweep")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (throughput)")
    p.add_argument(
        "--retrieval-concurrency",
        type=int,
        default=4,
        help="requests in flight for the recall run (latency off)",
    )
    p.add_argument(
        "--no-latency",
        action="store_true",
        help="no injected latency in latency/sweep/throughput runs",
    )
    p.add_argument(
        "--page-cache",
        action="store_true",
        help="keep Footnote's page cache on (off by default: questions repeat across runs)",
    )
    p.add_argument("--load-clients", type=int, default=200, help="concurrent streams (load)")
    p.add_argument(
        "--load-workers",
        default="1,2",
        help="comma-separated FOOTNOTE_WORKERS per load run (>1 shares a redis-server)",
    )
    p.add_argument("--load-model", default="speed", help="model (tier) of the load runs")
    p.add_argument(
        "--load-stream-delay",
        type=float,
        default=0.02,
        help="fake upstream pause between stream chunks in the load runs, s",
    )
    p.add_argument(
        "--index-sizes",
        help="documents per index run (default 1000,10000; 1000 with --quick; "
        "1000,10000,100000 for the full scale run)",
    )
    p.add_argument("--index-workers", type=int, help="parsing processes for ingest (default: CPUs)")
    p.add_argument("--hang-fraction", type=float, default=0.01, help="share of pages that hang")
    p.add_argument("--upstream-delay", type=float, default=0.3, help="fake upstream delay, s")
    p.add_argument("--seed", type=int, default=0, help="question sample and latency seed")
    p.add_argument("--out", type=Path, default=Path("bench/out"), help="JSON and PNG folder")
    args = p.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; always 0 unless the bench itself breaks."""
    args = parse_args(argv)
    started = time.perf_counter()
    Bench(args).run()
    log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
