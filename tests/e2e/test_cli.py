"""The ``footnote`` command line, run as a real subprocess.

Against the offline default (the local index seeded with the bundled corpus, in a temporary
data folder) and against the loopback fakes (SearXNG over the simulated web, the fake
upstream), passed in through ``FOOTNOTE_*`` variables exactly as a user would.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from tests.fakes.searxng import FakeSearxng, SearchResult
from tests.fakes.simweb import SimulatedWeb
from tests.fakes.upstream import FakeUpstream

FOOTNOTE = Path(sys.executable).parent / "footnote"
CLI = [sys.executable, "-m", "app.cli"]
ANSI = re.compile(r"\x1b\[")

# A page only the injected search result leads to: no corpus page shares its words, so every
# query finds this one page and nothing else (no straggler can change the evidence).
QUESTION = "Zorblax Quintessa Vexhollow?"
PAGE = b"""<!doctype html><html><head><title>The zorblax protocol</title></head><body>
<main><h1>The zorblax protocol</h1>
<p>The zorblax protocol was designed by Quintessa Vexhollow in 2031 to synchronise lunar
greenhouses. Vexhollow published the zorblax specification as an open standard.</p>
<p>Quintessa Vexhollow later led the zorblax working group for eleven years.</p>
</main></body></html>"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no Footnote configuration, data kept in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTNOTE_", "OPENAI_"))}
    env.pop("NO_COLOR", None)
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        TERM="xterm",
        FOOTNOTE_EXTRACT_WORKERS="0",
    )
    env.update(extra)
    return env


def fake_env(
    tmp_path: Path, searxng: FakeSearxng, upstream: FakeUpstream, **extra: str
) -> dict[str, str]:
    """Footnote wired to the loopback fakes, as the ``footnote`` fixture server is."""
    wiring = {
        "FOOTNOTE_SEARCH_PROVIDER": "searxng",
        "FOOTNOTE_SEARXNG_URL": searxng.base_url,
        "FOOTNOTE_UPSTREAM_BASE_URL": upstream.base_url,
        "FOOTNOTE_UPSTREAM_API_KEY": "fake-key",
        "FOOTNOTE_UPSTREAM_MODEL": "fake-model",
        "FOOTNOTE_FETCH_ALLOW_PRIVATE": "127.0.0.0/8",
    }
    return base_env(tmp_path, **{**wiring, **extra})


def run(
    args: list[str], env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def zorblax(simweb: SimulatedWeb, searxng: FakeSearxng) -> str:
    """The zorblax page on the simulated web, and the one result of every search."""
    url = simweb.add_page(6, "/zorblax-protocol", PAGE)
    searxng.inject_results = [
        SearchResult(
            url=url,
            title="The zorblax protocol",
            content="The zorblax protocol was designed by Quintessa Vexhollow.",
            publishedDate=None,
            engine="fake",
            engines=["fake"],
            positions=[1],
            category="general",
            score=1.0,
        )
    ]
    return url


def test_ask_offline_default_prints_footnotes_sources_and_confidence(tmp_path: Path) -> None:
    # The installed entry point, with no configuration at all: the offline default.
    proc = subprocess.run(
        [str(FOOTNOTE), "ask", "Who directed the 1979 film Alien?", "--model", "speed"],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    answer, _, rest = out.partition("\n\nSources\n")
    assert "Ridley Scott" in answer
    assert re.search(r"\[1\]", answer)
    sources, _, confidence = rest.partition("\n\nConfidence\n")
    assert re.search(r"^  \[1\] Alien \(film\)\n      http://\S+/Alien_\(film\)$", sources, re.M)
    assert re.match(r"  content: (low|medium|high) - \S", confidence)
    # Piped: no live display, no colours, nothing on stderr.
    assert not ANSI.search(out)
    assert proc.stderr == ""


def test_ask_json_is_the_api_completion(
    tmp_path: Path, zorblax: str, footnote: str, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    proc = run(
        ["ask", QUESTION, "--model", "lite", "--json"], fake_env(tmp_path, searxng, upstream)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    cli_body = proc.stdout.encode()
    assert cli_body.endswith(b"}\n") and cli_body.count(b"\n") == 1

    completion = ChatCompletion.model_validate_json(cli_body)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert "[1]" in completion.choices[0].message.content
    extra = completion.model_extra or {}
    assert extra["citations"] == [zorblax]
    (basis,) = extra["basis"]
    assert basis["field"] == "content"
    assert basis["citations"][0]["url"] == zorblax
    assert basis["confidence"] in ("low", "medium", "high")

    # The same request to the API returns the same bytes, but for the id and the time.
    request = urllib.request.Request(
        f"{footnote}/v1/chat/completions",
        data=json.dumps(
            {"model": "lite", "messages": [{"role": "user", "content": QUESTION}]}
        ).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        api_body = response.read()

    def normalised(body: bytes) -> bytes:
        body = re.sub(rb'"id":"chatcmpl-[0-9a-f]+"', b'"id":"-"', body, count=1)
        return re.sub(rb'"created":\d+', b'"created":0', body, count=1)

    assert normalised(cli_body.rstrip(b"\n")) == normalised(api_body)


def _run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 90) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return status and output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *args], env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, b"".join(chunks).decode("utf-8", "replace")


def test_ask_on_a_terminal_shows_the_stages_and_streams_the_answer(
    tmp_path: Path, zorblax: str, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    status, output = _run_in_terminal(
        ["ask", QUESTION, "--model", "lite"], fake_env(tmp_path, searxng, upstream)
    )
    assert status == 0, output
    # The live display: each stage redrawn in place on stderr, then erased.
    assert re.search(r"\x1b\[2K\S+ searching \d quer(y|ies)", output)
    assert "\x1b[2K\u280b" in output or "\x1b[2K|" in output  # a spinner frame
    assert re.search(r"reading 1 page \(1/1\)", output)
    assert re.search(r"\x1b\[2K\S+ writing", output)
    # Then the answer, its sources and its confidence, on the cleared line.
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output).replace("\r\n", "\n")
    assert "Quintessa Vexhollow" in plain
    assert "The zorblax protocol" in plain and zorblax in plain
    assert re.search(r"content: (low|medium|high)", plain)
    # The answer was asked for as a stream (printed as it is written).
    assert [r["body"]["stream"] for r in upstream.requests if r["body"]] == [True]


def test_ask_with_schema_prints_each_field_with_its_confidence(
    tmp_path: Path, zorblax: str, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    schema = tmp_path / "protocol.json"
    schema.write_text(
        json.dumps(
            {
                "title": "protocol facts",
                "type": "object",
                "properties": {"designer": {"type": "string"}, "year": {"type": "integer"}},
                "required": ["designer", "year"],
                "additionalProperties": False,
            }
        )
    )
    proc = run(
        ["ask", QUESTION, "--model", "lite", "--schema", str(schema)],
        fake_env(tmp_path, searxng, upstream),
    )
    assert proc.returncode == 0, proc.stderr
    sent = next(r["body"] for r in upstream.requests if r["body"])
    answer, _, rest = proc.stdout.partition("\n\nSources\n")
    fields = json.loads(answer)
    assert set(fields) == {"designer", "year"}
    assert "Quintessa Vexhollow" in fields["designer"]
    assert f"[1] The zorblax protocol\n      {zorblax}" in rest
    assert re.search(r"^  designer: (low|medium|high)", rest, re.M)
    assert re.search(r"^  year: (low|medium|high)", rest, re.M)
    assert sent["response_format"]["type"] in ("json_schema", "json_object")


def test_errors_are_one_line_and_exit_non_zero(
    tmp_path: Path, searxng: FakeSearxng, upstream: FakeUpstream
) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"type": "object",')
    closed = f"http://127.0.0.1:{free_port()}"
    cases: list[tuple[list[str], dict[str, str], int, str]] = [
        # Configuration and usage: exit 2 (more cases run in-process in tests/unit/test_cli.py).
        (["ask", "q"], base_env(tmp_path, FOOTNOTE_SEARCH_PROVIDER="nope"), 2, "nope"),
        (["ask", "q", "--schema", str(bad_json)], base_env(tmp_path), 2, "not valid JSON"),
        # Failures while answering: exit 1 (search down; the upstream failing).
        (
            ["ask", QUESTION, "--model", "speed"],
            fake_env(tmp_path, searxng, upstream, FOOTNOTE_SEARXNG_URL=closed),
            1,
            "Search is unavailable",
        ),
        (
            ["ask", "Who directed Alien?", "--model", "speed", "--json"],
            base_env(
                tmp_path,
                FOOTNOTE_UPSTREAM_BASE_URL=f"{closed}/v1",
                FOOTNOTE_UPSTREAM_FALLBACK="error",
            ),
            1,
            "upstream",
        ),
    ]
    # Started together: each one's start-up time overlaps the others'.
    procs = [
        subprocess.Popen(
            [*CLI, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, env, _, _ in cases
    ]
    for proc, (args, _, code, words) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == code, (args, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("footnote: error: "), (args, err)
        assert words in err, (args, err)


def test_index_a_folder_then_ask_the_local_index(tmp_path: Path) -> None:
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "zorblax.md").write_text(
        "# The zorblax protocol\n\nThe zorblax protocol was designed by Quintessa Vexhollow "
        "in 2031 to synchronise lunar greenhouses.\n"
    )
    (docs / "other.txt").write_text("Nothing about protocols here, only gardening notes.\n")
    index = tmp_path / "index.sqlite3"
    env = base_env(tmp_path)

    proc = run(["index", str(docs), "--index-path", str(index)], env)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(
        rf"indexed into {re.escape(str(index))}: 2 added, 0 updated, 0 removed, 0 unchanged"
        r"; 2 documents in the index \(\d+\.\ds\)\n",
        proc.stdout,
    )

    ask_env = {**env, "FOOTNOTE_SEARCH_PROVIDER": "local", "FOOTNOTE_INDEX_PATH": str(index)}
    proc = run(["ask", "Who designed the zorblax protocol?", "--model", "speed", "--json"], ask_env)
    assert proc.returncode == 0, proc.stderr
    completion = json.loads(proc.stdout)
    url = (docs / "zorblax.md").resolve().as_uri()
    assert completion["citations"][0] == url
    assert "Quintessa Vexhollow" in completion["choices"][0]["message"]["content"]
    assert completion["basis"][0]["citations"][0]["url"] == url


def test_serve_answers_health_checks_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=base_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        assert health.get("status") == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (as `python -m app`).
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
