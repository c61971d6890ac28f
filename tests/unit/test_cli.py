"""The ``footnote`` command line in-process: arguments, errors, rendering, stage reports."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.cli import build_parser, main, summary
from app.cli_asgi import running
from app.cli_errors import CliError
from app.cli_render import Progress, SseDecoder, cited_numbers, describe, render_tail
from app.cli_request import AskOptions, load_schema, request_body
from app.server import create_app
from app.settings import Settings
from retrieval.progress import report, reporting

META: dict[str, Any] = {
    "citations": ["https://a.example/1", "https://b.example/2", "https://c.example/3"],
    "search_results": [
        {"title": "Page  A", "url": "https://a.example/1", "date": None, "snippet": ""},
        {"title": "Page B", "url": "https://b.example/2", "date": None, "snippet": ""},
        {"title": "", "url": "https://c.example/3", "date": None, "snippet": ""},
    ],
    "basis": [
        {
            "field": "content",
            "citations": [{"url": "https://c.example/3", "title": "", "excerpts": ["x"]}],
            "reasoning": "Sentence 1 is\nsupported by [3].",
            "confidence": "high",
        }
    ],
}


@pytest.fixture(autouse=True)
def _logging_back_on() -> Iterator[None]:
    """``footnote ask`` silences logging for its process; give the test session it back."""
    yield
    logging.disable(logging.NOTSET)


# --- stage reports ---------------------------------------------------------------------------


def test_report_without_a_callback_does_nothing() -> None:
    report("searching", queries=3)  # no callback set: no error, no effect


def test_reporting_sends_stages_to_the_callback_and_only_inside_its_block() -> None:
    seen: list[tuple[str, dict[str, int]]] = []
    with reporting(lambda stage, **info: seen.append((stage, info))):
        report("searching", queries=2)
        report("writing")
    report("reading", pages=1)
    assert seen == [("searching", {"queries": 2}), ("writing", {})]


def test_a_failing_callback_never_breaks_the_request() -> None:
    def broken(stage: str, **info: int) -> None:
        raise RuntimeError("display gone")

    with reporting(broken):
        report("writing")  # logged, not raised


@pytest.mark.anyio
async def test_a_request_reports_its_stages_in_order() -> None:
    """The real app, offline: search, read (page by page), then write."""
    seen: list[tuple[str, dict[str, int]]] = []
    settings = Settings(search_provider="bundled", extract_workers=0)
    body = request_body(AskOptions(question="Who directed Alien?", model="speed"), stream=False)
    with reporting(lambda stage, **info: seen.append((stage, info))):
        async with running(create_app(settings)) as client:
            reply = await client.post("/v1/chat/completions", body)
    assert reply.status == 200, reply.body
    stages = [stage for stage, _ in seen]
    assert stages[0] == "searching" and seen[0][1]["queries"] >= 1
    assert stages[-1] == "writing"
    reading = [info for stage, info in seen if stage == "reading"]
    pages = reading[0]["pages"]
    assert reading[0]["done"] == 0 and pages >= 1
    assert [r["done"] for r in reading[: pages + 1]] == list(range(pages + 1))
    assert json.loads(reply.body)["basis"][0]["field"] == "content"


@pytest.mark.anyio
async def test_a_streamed_reply_arrives_in_pieces_and_an_error_keeps_its_body() -> None:
    settings = Settings(search_provider="bundled", extract_workers=0)
    pieces: list[bytes] = []
    async with running(create_app(settings)) as client:
        body = request_body(AskOptions(question="Who directed Alien?"), stream=True)
        ok = await client.post("/v1/chat/completions", body, pieces.append)
        bad = await client.post("/v1/chat/completions", b'{"model": "nope"}', pieces.append)
    assert ok.status == 200 and ok.body == b""
    assert len(pieces) > 3 and pieces[-1] == b"data: [DONE]\n\n"
    assert bad.status == 400 and json.loads(bad.body)["error"]["param"] == "messages"


# --- rendering -------------------------------------------------------------------------------


def test_sse_decoder_joins_events_split_across_pieces() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b": 1}\n\ndata: [DO") == ['{"a": 1}']
    assert decoder.feed(b"NE]\n\n") == ["[DONE]"]


def test_cited_sources_come_from_markers_and_basis_urls() -> None:
    assert cited_numbers("A [1]. B [1][7].", META) == [1, 3]  # [7] names no source


def test_tail_lists_cited_sources_then_confidence() -> None:
    tail = render_tail("Claim [1].", META)
    assert tail == (
        "Sources\n"
        "  [1] Page A\n"
        "      https://a.example/1\n"
        "  [3] https://c.example/3\n"
        "      https://c.example/3\n"
        "  (1 more page read, not cited)\n"
        "\n"
        "Confidence\n"
        "  content: high - Sentence 1 is supported by [3]."
    )
    assert "\x1b[1mSources\x1b[0m" in render_tail("Claim [1].", META, color=True)


def test_tail_of_an_answer_citing_nothing() -> None:
    tail = render_tail("No answer.", {"citations": ["u"], "search_results": [], "basis": []})
    assert "none cited (1 page read)" in tail and "(no basis returned)" in tail


def test_stage_descriptions() -> None:
    assert describe("searching", {"queries": 1}) == "searching 1 query"
    assert describe("searching", {"queries": 3}) == "searching 3 queries"
    assert describe("reading", {"pages": 10, "done": 0}) == "reading 10 pages"
    assert describe("reading", {"pages": 10, "done": 4}) == "reading 10 pages (4/10)"
    assert describe("writing", {}) == "writing"


def test_progress_redraws_one_line_and_erases_it() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 0.3, 1.5])
    progress = Progress(stream, clock=lambda: next(ticks))
    progress.report("searching", queries=2)
    progress.report("writing")
    progress.stop()
    progress.report("reading", pages=3)  # stopped: ignored
    assert stream.getvalue() == (
        "\r\x1b[2K| searching 2 queries  0.3s\r\x1b[2K/ writing  1.5s\r\x1b[2K"
    )


# --- schema files ----------------------------------------------------------------------------


def test_schema_file_becomes_a_named_json_schema(tmp_path: Path) -> None:
    plain = tmp_path / "my facts.json"
    plain.write_text('{"type": "object", "title": "Film facts!"}')
    assert load_schema(str(plain)) == {
        "name": "Film_facts_",
        "schema": {"type": "object", "title": "Film facts!"},
    }
    untitled = tmp_path / "facts.json"
    untitled.write_text('{"type": "object"}')
    assert load_schema(str(untitled))["name"] == "facts"
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{"name": "x", "strict": true, "schema": {"type": "object"}}')
    assert load_schema(str(wrapped)) == {"name": "x", "strict": True, "schema": {"type": "object"}}
    body = json.loads(request_body(AskOptions(question="q", schema={"name": "x"}), stream=False))
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "x"}}


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "not found"), ("{oops", "not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_bad_schema_files_are_usage_errors(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CliError) as caught:
        load_schema(str(path))
    assert caught.value.code == 2 and words in caught.value.message


# --- the command itself ----------------------------------------------------------------------


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ask", "q", "--model", "huge"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("footnote: error: argument --model: invalid choice")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["ask", "q", "--schema", "/nonexistent/s.json"], {}, "schema file not found"),
        (["ask", "  "], {}, "the question is empty"),
        (["ask", "q"], {"FOOTNOTE_SEARCH_PROVIDER": "nope"}, "configuration: "),
        (["serve"], {"FOOTNOTE_PORT": "eighty"}, "FOOTNOTE_PORT must be a number"),
        (["index", "/nonexistent/notes"], {}, "no such file or directory"),
    ],
)
def test_config_and_usage_failures_exit_2_with_one_line(
    argv: list[str],
    env: dict[str, str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("footnote: error: ") and captured.err.count("\n") == 1
    assert words in captured.err


def test_parser_knows_the_three_commands() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--port", "9000", "--workers", "2"]).port == 9000
    assert parser.parse_args(["ask", "q"]).model == "base"
    args = parser.parse_args(["index", "a", "b", "--index-path", "i.db"])
    assert args.paths == ["a", "b"] and args.index_path == "i.db"


def test_index_summary_line() -> None:
    class Report:
        added, updated, removed, unchanged, skipped, documents, seconds = 3, 1, 0, 7, 2, 11, 0.44

    assert summary(Path("/i.db"), Report()) == (
        "indexed into /i.db: 3 added, 1 updated, 0 removed, 7 unchanged, 2 skipped; "
        "11 documents in the index (0.4s)"
    )
