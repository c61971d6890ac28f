"""Graceful shutdown of ``python -m app``: SIGTERM drains open requests, refuses new ones.

The real entry point runs as a subprocess configured by environment variables, pointed at the
loopback fakes (SearXNG over the simulated web, the fake upstream streaming slowly).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.searxng import FakeSearxng
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 10.0  # app/__main__.py: timeout_graceful_shutdown
ANSWER = "Scott Derrickson directed Doctor Strange, the film. " * 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(
    searxng: FakeSearxng, upstream: FakeUpstream
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FOOTNOTE_", "OPENAI_"))},
        "FOOTNOTE_HOST": "127.0.0.1",
        "FOOTNOTE_PORT": str(port),
        "FOOTNOTE_SEARCH_PROVIDER": "searxng",
        "FOOTNOTE_SEARXNG_URL": searxng.base_url,
        "FOOTNOTE_UPSTREAM_BASE_URL": upstream.base_url,
        "FOOTNOTE_UPSTREAM_API_KEY": "fake-key",
        "FOOTNOTE_UPSTREAM_MODEL": "fake-model",
        "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8",
        "FOOTNOTE_EXTRACT_WORKERS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "python -m app did not start in 30 s"
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_sigterm_drains_the_open_stream_then_exits(
    served: tuple[subprocess.Popen[bytes], str], upstream: FakeUpstream
) -> None:
    proc, base = served
    upstream.script = ANSWER
    upstream.inter_chunk_delay_s = 0.1  # ~24 chunks: about 2.5 s of streaming
    events: list[Any] = []
    failure: list[BaseException] = []

    def read_stream() -> None:
        body = {
            "model": "speed",
            "messages": [{"role": "user", "content": "Who directed Doctor Strange?"}],
            "stream": True,
        }
        try:
            with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=30) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        data = line[6:]
                        events.append(data if data == "[DONE]" else json.loads(data))
        except BaseException as exc:  # reported by the test thread
            failure.append(exc)

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while not any(isinstance(e, dict) and e.get("choices") for e in events):
        assert time.monotonic() < deadline and not failure, failure or "no stream"
        time.sleep(0.02)

    proc.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    # New connections are refused while the open request drains.
    refused = False
    while time.monotonic() - sent_at < 2.0 and not refused:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            time.sleep(0.05)
        except httpx.ConnectError:
            refused = True
    assert refused, "still accepting connections after SIGTERM"
    assert reader.is_alive(), "the stream ended before the drain could be observed"

    reader.join(GRACE_S + 5)
    assert not reader.is_alive() and not failure, failure
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    assert all("error" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    # Every sentence arrived (Footnote may add citation markers of its own).
    assert text.count("Scott Derrickson directed Doctor Strange") == 6, text
    assert chunks[-1].get("basis"), "the final chunk (basis, usage) is missing"
    proc.wait(GRACE_S + 5)
    assert time.monotonic() - sent_at < GRACE_S + 5
    # uvicorn re-raises the signal it caught once shut down: exit by SIGTERM or 0.
    assert proc.returncode in (0, -signal.SIGTERM), proc.returncode
