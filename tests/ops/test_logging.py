"""Structured logs: JSON lines (or text) carrying request ids, never keys or request bodies."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.obs.context import close_record, open_record
from app.obs.logs import JsonFormatter, RequestIdFilter, TextFormatter, resolve_format
from tests.fakes.searxng import FakeSearxng
from tests.fakes.upstream import FakeUpstream

CLIENT_KEY = "sk-client-SECRET-4f1e"
UPSTREAM_KEY = "sk-upstream-SECRET-9c2d"
MARKER = "Zanzibarquux"  # a word only the request body holds


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("footnote.test", logging.WARNING, __file__, 1, msg, (), None)
    rec.__dict__.update(extra)
    return rec


def test_json_line_has_the_fixed_keys_and_the_fields() -> None:
    rec = record("GET /x 200", fields={"status": 200, "duration_ms": 1.5, "stages_ms": {"a": 1}})
    record_id, token = open_record("req-1")
    try:
        RequestIdFilter().filter(rec)
    finally:
        close_record(token)
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    data = json.loads(line)
    assert data.pop("timestamp").endswith("+00:00")
    assert data == {
        "level": "WARNING",
        "logger": "footnote.test",
        "message": "GET /x 200",
        "request_id": "req-1",
        "status": 200,
        "duration_ms": 1.5,
        "stages_ms": {"a": 1},
    }
    assert record_id.request_id == "req-1"


def test_json_outside_a_request_and_with_a_traceback() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        rec = record("failed", exc_info=sys.exc_info())
    RequestIdFilter().filter(rec)
    line = JsonFormatter().format(rec)
    assert "\n" not in line  # the traceback is escaped inside the one line
    data = json.loads(line)
    assert data["request_id"] is None
    assert "ValueError: boom" in data["exception"]


def test_text_format() -> None:
    _, token = open_record("req-2")
    try:
        line = TextFormatter().format(record("hello", fields={"status": 201, "tier": None}))
    finally:
        close_record(token)
    assert line.endswith("WARNING footnote.test [req-2] hello status=201")
    assert TextFormatter().format(record("bye")).endswith("[-] bye")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_resolution() -> None:
    assert resolve_format("json", Tty()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(searxng: FakeSearxng, upstream: FakeUpstream) -> Iterator[tuple[str, list[str]]]:
    """``python -m app`` with two workers and JSON logs; yields its URL and a list that holds
    its stderr lines once the block is left (the server is stopped with SIGTERM)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FOOTNOTE_", "PROMETHEUS_"))},
        "FOOTNOTE_PORT": str(port),
        "FOOTNOTE_WORKERS": "2",
        "FOOTNOTE_LOG_FORMAT": "json",
        "FOOTNOTE_SEARCH_PROVIDER": "searxng",
        "FOOTNOTE_SEARXNG_URL": searxng.base_url,
        "FOOTNOTE_UPSTREAM_BASE_URL": upstream.base_url,
        "FOOTNOTE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "FOOTNOTE_UPSTREAM_MODEL": "fake-model",
        "FOOTNOTE_API_KEYS": CLIENT_KEY,
        "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8",
        "FOOTNOTE_EXTRACT_WORKERS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited at start-up"
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        lines.extend(line for line in err.splitlines() if line.strip())


def test_two_workers_log_json_lines_without_secrets_and_add_up_metrics(
    searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    question = f"Who directed Ed Wood? {MARKER}"
    sent = [f"log-test-{i}" for i in range(6)]
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    with serving(searxng, upstream) as (base, lines):
        for rid in sent:
            # A new connection each time, so that both workers get some of the requests.
            resp = httpx.post(
                f"{base}/v1/chat/completions",
                headers={**auth, "x-request-id": rid, "connection": "close"},
                json={"model": "speed", "messages": [{"role": "user", "content": question}]},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-request-id"] == rid
        metrics = httpx.get(f"{base}/metrics", headers=auth, timeout=30).text
    # Metrics add up across the two worker processes, whichever one answered the scrape.
    total = sum(
        s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "footnote_http_requests_total"
        and s.labels.get("route") == "/v1/chat/completions"
    )
    assert total == len(sent)

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(
        {"timestamp", "level", "logger", "message", "request_id"} <= r.keys() for r in records
    )
    access = {r["request_id"]: r for r in records if r["logger"] == "footnote.access"}
    assert set(sent) <= set(access)
    line = access[sent[0]]
    assert line["method"] == "POST" and line["path"] == "/v1/chat/completions"
    assert line["status"] == 200 and line["duration_ms"] > 0 and line["tier"] == "speed"
    assert line["pages_fetched"] > 0 and line["prompt_tokens"] > 0
    assert {"search", "fetch_extract", "rank", "upstream"} <= line["stages_ms"].keys()
    # uvicorn's own lines (start-up, shutdown) are JSON too; its access log is replaced.
    assert any(r["logger"].startswith("uvicorn") for r in records)
    assert not any(r["logger"] == "uvicorn.access" for r in records)
    text = "\n".join(lines)
    for secret in (CLIENT_KEY, UPSTREAM_KEY, MARKER):
        assert secret not in text
