"""Load: many concurrent streaming clients against a real ``python -m app`` process.

The simulated world (``bench/world.py``: web pages, SearXNG, a fake upstream that streams its
answer a few words at a time) answers Footnote; Footnote runs exactly as deployed, a
``python -m app`` subprocess configured by ``FOOTNOTE_*`` variables (``FOOTNOTE_WORKERS=N``
with ``FOOTNOTE_REDIS_URL`` for the multi-worker run, against a real ``redis-server``). The
driver opens ``clients`` streaming requests at once (``httpx.AsyncClient``, one connection
each) and records per request the time to the first content delta (TTFT) and to ``[DONE]``;
a request counts as an error if its status is not 200, its stream carries an in-band error,
it ends without ``[DONE]`` or without the final chunk's ``basis``, or the connection fails.

Peak memory is sampled every 100 ms from ``/proc`` over the server's whole process tree
(uvicorn's supervisor, its workers, their extraction pools): the sum of RSS (pages shared
between forked processes count once per process, so this overstates) and the sum of PSS
(shared pages split between their users; the fair total).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.metrics import percentile
from bench.report import fmt, table
from bench.world import World
from tests.fakes.simweb import Question

ROOT = Path(__file__).resolve().parents[1]
TARGET_RSS_MB = 600.0
TARGET_P99_OVER_P50 = 2.0


@dataclass
class LoadRun:
    """One load run: what was asked, what came back, and the server's memory."""

    label: str
    workers: int
    clients: int
    model: str
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    peak_processes: int = 0
    server_cpu_s: float = 0.0
    world_cpu_s: float = 0.0
    pages_read: list[int] = field(default_factory=list)
    load_average: float = 0.0

    @property
    def requests_per_s(self) -> float:
        """Completed requests per wall-clock second of the burst."""
        return self.ok / self.wall_s if self.wall_s else 0.0

    def p(self, values: Sequence[float], q: float) -> float:
        """A percentile of ``values`` (NaN when empty)."""
        return percentile(values, q)


# --- the server process ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(root: int) -> list[int]:
    """``root`` and all its live descendants (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) once it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in rollup.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
            values[parts[0]] = int(parts[1])
    return values.get("Rss:", 0), values.get("Pss:", 0)


def _cpu_s(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    # utime stime cutime cstime: the last two hold reaped children (workers that exited).
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class MemorySampler:
    """Samples the process tree's summed RSS and PSS every ``interval_s`` in a thread."""

    def __init__(self, root: int, interval_s: float = 0.1) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self.cpu_s: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def reset(self) -> None:
        """Forget the peaks (after warm-up)."""
        self.peak_rss_kb = self.peak_pss_kb = self.peak_processes = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """One sample now."""
        pids = _tree(self.root)
        rss = pss = 0
        for pid in pids:
            r, p = _memory_kb(pid)
            rss, pss = rss + r, pss + p
            self.cpu_s[pid] = max(self.cpu_s.get(pid, 0.0), _cpu_s(pid))
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        self.peak_processes = max(self.peak_processes, len(pids))

    def start(self) -> MemorySampler:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(5)


class FootnoteProcess:
    """``python -m app`` configured for the world; ``stop()`` sends SIGTERM (then kills)."""

    def __init__(
        self,
        world: World,
        *,
        workers: int,
        redis_url: str | None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTNOTE_", "OPENAI_"))}
        env.update(
            {
                "FOOTNOTE_HOST": "127.0.0.1",
                "FOOTNOTE_PORT": str(self.port),
                "FOOTNOTE_SEARCH_PROVIDER": "searxng",
                "FOOTNOTE_SEARXNG_URL": world.searxng_url,
                "FOOTNOTE_UPSTREAM_BASE_URL": world.upstream_url,
                "FOOTNOTE_UPSTREAM_API_KEY": "bench",
                "FOOTNOTE_UPSTREAM_MODEL": "fake-model",
                "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8",
                # Every question is asked once per run, and runs must not warm each other.
                "FOOTNOTE_CACHE_TTL": "0",
                "FOOTNOTE_WORKERS": str(workers),
                "FOOTNOTE_LOG_LEVEL": "WARNING",
            }
        )
        if redis_url:
            env["FOOTNOTE_REDIS_URL"] = redis_url
        env.update(extra)
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"footnote-load-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``/healthz`` answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"python -m app exited: {self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"python -m app not ready in {timeout} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        """The end of the server's log."""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Graceful stop (SIGTERM), killed if it lingers past the grace period."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# --- the clients ----------------------------------------------------------------------------


async def _one(
    client: httpx.AsyncClient,
    url: str,
    model: str,
    question: str,
    start: asyncio.Event,
    pages: list[int],
) -> tuple[float | None, float | None, str | None]:
    """One streaming request: (TTFT ms, total ms, error or None); pages read go to ``pages``."""
    await start.wait()
    body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True}
    t0 = time.perf_counter()
    ttft: float | None = None
    done = basis = False
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")[:200]
                return None, None, f"HTTP {resp.status_code}: {text}"
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                if "error" in event:
                    return ttft, None, f"in-band error: {event['error'].get('code')}"
                if event.get("basis"):
                    basis = True
                    pages.append(int((event.get("usage") or {}).get("num_pages_fetched", 0)))
                choices = event.get("choices") or []
                if ttft is None and choices and choices[0]["delta"].get("content"):
                    ttft = (time.perf_counter() - t0) * 1000
    except httpx.HTTPError as exc:
        return ttft, None, f"{type(exc).__name__}: {exc}"[:200]
    total = (time.perf_counter() - t0) * 1000
    if not done:
        return ttft, None, "stream ended without [DONE]"
    if not basis:
        return ttft, None, "no basis on the final chunk"
    return ttft if ttft is not None else total, total, None


async def _burst(
    base_url: str, model: str, questions: Sequence[str], timeout_s: float
) -> tuple[list[tuple[float | None, float | None, str | None]], float, list[int]]:
    limits = httpx.Limits(max_connections=len(questions) + 8, max_keepalive_connections=None)
    timeout = httpx.Timeout(timeout_s, connect=30.0)
    url = f"{base_url}/v1/chat/completions"
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        start = asyncio.Event()
        pages: list[int] = []
        tasks = [asyncio.create_task(_one(client, url, model, q, start, pages)) for q in questions]
        await asyncio.sleep(0.05)  # every task is waiting on the start line
        t0 = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        return results, time.perf_counter() - t0, pages


def run_load(
    world: World,
    questions: Sequence[Question],
    *,
    label: str,
    clients: int,
    workers: int,
    model: str,
    redis_url: str | None = None,
    warmup: int = 4,
    timeout_s: float = 180.0,
    env: dict[str, str] | None = None,
) -> LoadRun:
    """Start ``python -m app``, warm it up, fire ``clients`` streams at once, stop it."""
    texts = [q["question"] for q in questions]
    asked = [texts[i % len(texts)] for i in range(clients)]
    server = FootnoteProcess(world, workers=workers, redis_url=redis_url, env=env)
    run = LoadRun(label=label, workers=workers, clients=clients, model=model)
    sampler: MemorySampler | None = None
    try:
        server.wait_ready()
        sampler = MemorySampler(server.proc.pid).start()
        # Warm-up: the extraction pools start, imports finish, connections open.
        warm = texts[-warmup:] if warmup else []
        asyncio.run(_burst(server.base_url, model, warm, timeout_s))
        cpu0, world0 = sum(sampler.cpu_s.values()), world.cpu()
        sampler.reset()
        results, run.wall_s, pages = asyncio.run(_burst(server.base_url, model, asked, timeout_s))
        run.pages_read = pages
        sampler.sample()
        run.server_cpu_s = sum(sampler.cpu_s.values()) - cpu0
        run.world_cpu_s = world.cpu() - world0
        run.load_average = os.getloadavg()[0]
        run.peak_rss_mb = sampler.peak_rss_kb / 1024
        run.peak_pss_mb = sampler.peak_pss_kb / 1024
        run.peak_processes = sampler.peak_processes
        for ttft, total, error in results:
            if error is not None:
                run.errors.append(error)
                continue
            run.ok += 1
            assert ttft is not None and total is not None
            run.ttft_ms.append(ttft)
            run.total_ms.append(total)
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
    return run


# --- the report -----------------------------------------------------------------------------


def load_section(runs: Sequence[LoadRun]) -> str:
    """The load table: errors, latency percentiles, throughput, memory, against the targets."""
    rows = []
    for r in runs:
        t50, t99 = r.p(r.total_ms, 50), r.p(r.total_ms, 99)
        rows.append(
            [
                r.label,
                str(r.clients),
                str(len(r.errors)),
                fmt(r.p(r.ttft_ms, 50)),
                fmt(r.p(r.ttft_ms, 99)),
                fmt(t50),
                fmt(t99),
                fmt(t99 / t50 if t50 else None, 2),
                fmt(r.requests_per_s, 1),
                fmt(sum(r.pages_read) / len(r.pages_read) if r.pages_read else None, 1),
                fmt(r.server_cpu_s / r.wall_s if r.wall_s else None, 2),
                fmt(r.world_cpu_s / r.wall_s if r.wall_s else None, 2),
                fmt(r.load_average, 1),
                fmt(r.peak_rss_mb),
                fmt(r.peak_pss_mb),
                str(r.peak_processes),
            ]
        )
    rows.append(
        [
            "target",
            "200",
            "0",
            "",
            "",
            "",
            "",
            f"<= {TARGET_P99_OVER_P50:g}",
            "",
            "",
            "",
            "",
            "",
            f"<= {TARGET_RSS_MB:g}",
            "",
            "",
        ]
    )
    headers = [
        "run",
        "streams",
        "errors",
        "TTFT p50",
        "TTFT p99",
        "done p50",
        "done p99",
        "p99/p50",
        "req/s",
        "pages/req",
        "srv cores",
        "world cores",
        "load avg",
        "peak RSS MB",
        "peak PSS MB",
        "procs",
    ]
    return table(headers, rows)


def error_lines(runs: Sequence[LoadRun], most: int = 10) -> list[str]:
    """The errors of each run, counted by message (at most ``most`` kinds per run)."""
    lines = []
    for r in runs:
        if not r.errors:
            continue
        counts: dict[str, int] = {}
        for e in r.errors:
            counts[e] = counts.get(e, 0) + 1
        kinds = sorted(counts.items(), key=lambda kv: -kv[1])[:most]
        lines.append(f"{r.label}: " + "; ".join(f"{n} x {msg}" for msg, n in kinds))
    return lines


def missed_targets(run: LoadRun) -> list[str]:
    """Which targets a run missed, in words."""
    missed = []
    if run.errors:
        missed.append(f"{len(run.errors)} errors")
    t50, t99 = run.p(run.total_ms, 50), run.p(run.total_ms, 99)
    if t50 and t99 / t50 > TARGET_P99_OVER_P50:
        missed.append(f"p99/p50 = {t99 / t50:.2f}")
    if run.peak_rss_mb > TARGET_RSS_MB:
        missed.append(f"peak RSS {run.peak_rss_mb:.0f} MB")
    return missed
