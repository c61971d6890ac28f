"""The latency-vs-pages plot (matplotlib, Agg backend); skipped politely without matplotlib.

matplotlib is an optional extra (``pip install -e '.[bench]'``), so it is imported at run time
and typed as ``Any``: the benchmarks and their type check work without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any | None:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def plot_latency_vs_pages(
    pages: Sequence[int],
    e2e_p50: Sequence[float],
    e2e_p95: Sequence[float],
    crit_p50: Sequence[float],
    cpu_ms: Sequence[float],
    path: Path,
) -> str:
    """Draw latency (p50, p95, critical path p50) and server CPU against pages read.

    Returns a one-line message: where the PNG went, or why there is none.
    """
    plt = _pyplot()
    if plt is None:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot(pages, e2e_p50, marker="o", label="end-to-end p50")
    ax.plot(pages, e2e_p95, marker="^", label="end-to-end p95")
    ax.plot(pages, crit_p50, marker="s", linestyle=":", label="critical path p50")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(pages))
    ax.set_xticklabels([str(p) for p in pages])
    ax.set_xlabel("pages read per request")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    cpu_ax = ax.twinx()
    cpu_ax.plot(pages, cpu_ms, color="grey", marker="x", linestyle="--", label="server CPU / req")
    cpu_ax.set_ylabel("server CPU per request (ms)")
    cpu_ax.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = cpu_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
    ax.set_title("Footnote on the simulated web: latency vs pages read")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"
