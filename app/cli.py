"""The ``footnote`` command line: ``serve``, ``ask`` and ``index``.

``footnote serve`` runs the server exactly as ``python -m app`` does (its options become the
``FOOTNOTE_*`` settings, so every worker process reads the same ones). ``footnote ask`` sends
one question through the API's own request path in this process (``app.cli_ask``).
``footnote index`` adds local files to the index the ``local`` search provider reads.

Every failure is one line on stderr, ``footnote: error: ...``, and a non-zero exit status:
2 for usage and configuration errors, 1 for failures while running. No tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from app.cli_errors import CliError
from app.cli_request import AskOptions, load_schema
from app.settings import Settings, SettingsError

PROG = "footnote"
# The research tiers (app.tiers.TIERS), spelled out so `--help` needs no heavy imports.
MODELS = ("speed", "lite", "base", "core")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the tool."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}")
    return int(raw)


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {raw!r}")
    return int(raw)


def build_parser() -> argparse.ArgumentParser:
    """The ``footnote`` argument parser with its three subcommands."""
    parser = _Parser(
        prog=PROG,
        description="Footnote: research answers whose every claim carries its footnote.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="serve the OpenAI-compatible API (as `python -m app`)"
    )
    serve.add_argument("--host", help="address to listen on (FOOTNOTE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (FOOTNOTE_PORT, default 8000)")
    serve.add_argument(
        "--workers", type=_positive, help="worker processes (FOOTNOTE_WORKERS, default 1)"
    )
    serve.set_defaults(run=_serve)

    ask = commands.add_parser(
        "ask",
        help="answer one question with footnotes, sources and confidence",
        description="Answer QUESTION through the API's request path, in this process. "
        "Configuration comes from the FOOTNOTE_* environment, as for the server.",
    )
    ask.add_argument("question", help="the question ('-' reads it from stdin)")
    ask.add_argument(
        "--model", choices=MODELS, default="base", help="research tier (default: base)"
    )
    ask.add_argument(
        "--schema",
        metavar="FILE",
        help="JSON Schema file: ask for a structured answer (response_format json_schema)",
    )
    ask.add_argument(
        "--json",
        action="store_true",
        help="print the ChatCompletion JSON exactly as the API returns it",
    )
    ask.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    ask.set_defaults(run=_ask)

    index = commands.add_parser(
        "index",
        help="index local files for FOOTNOTE_SEARCH_PROVIDER=local",
        description="Add, update or remove the documents under PATH in the local index.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to index")
    index.add_argument("--index-path", metavar="P", help="index location (default: the usual)")
    index.add_argument(
        "--base-url", metavar="URL", help="URL prefix citations use instead of file:// paths"
    )
    index.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    index.set_defaults(run=_index)
    return parser


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(f"configuration: {exc}", 2) from None


def _quiet_logging(verbose: bool) -> None:
    """Logs only with ``--verbose``: the command's output is its answer, not the server's log."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:
        # Litestar sets up logging to stderr when the app is built; none of it is wanted here.
        logging.disable(logging.CRITICAL)


def _serve(args: argparse.Namespace) -> int:
    # Options become settings in the environment: `python -m app` reads them there, and so
    # does every worker process it starts.
    if args.host is not None:
        os.environ["FOOTNOTE_HOST"] = args.host
    if args.port is not None:
        os.environ["FOOTNOTE_PORT"] = str(args.port)
    if args.workers is not None:
        if "workers" not in Settings.__struct_fields__:
            raise CliError("--workers is not supported by this build yet", 2)
        os.environ["FOOTNOTE_WORKERS"] = str(args.workers)
    _settings()  # a configuration error is reported here, in this tool's words
    from app import __main__ as server

    server.main()
    return 0


def _ask(args: argparse.Namespace) -> int:
    _quiet_logging(args.verbose)
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise CliError("the question is empty", 2)
    schema = load_schema(args.schema) if args.schema else None
    settings = _settings()
    if "FOOTNOTE_EXTRACT_WORKERS" not in os.environ:
        # One question gains nothing from a pool of extraction processes but their start-up.
        settings = msgspec.structs.replace(settings, extract_workers=0)
    options = AskOptions(question=question.strip(), model=args.model, schema=schema, json=args.json)
    # Imported once the arguments are known good: the app and its SDKs take a while to load.
    from app.cli_ask import run_ask

    run_ask(options, settings, sys.stdout, sys.stderr)
    return 0


def _index(args: argparse.Namespace) -> int:
    _quiet_logging(args.verbose)
    try:
        local: Any = importlib.import_module("retrieval.index")
    except ImportError:
        raise CliError("this build has no local index (retrieval.index is missing)", 1) from None
    paths = [Path(p).expanduser() for p in args.paths]
    for path in paths:
        if not path.exists():
            raise CliError(f"no such file or directory: {path}", 2)
    # The same precedence as the server: the option, then FOOTNOTE_INDEX_PATH, then the default.
    chosen = args.index_path or os.environ.get("FOOTNOTE_INDEX_PATH", "").strip()
    index_path = Path(chosen).expanduser() if chosen else Path(local.default_index_path())
    try:
        result = local.ingest(paths, index_path, base_url=args.base_url)
    except local.NotAnIndex as exc:
        raise CliError(f"{index_path} is not a Footnote index: {exc}", 1) from None
    except (OSError, ValueError, sqlite3.Error) as exc:
        raise CliError(f"indexing into {index_path} failed: {exc}", 1) from None
    for problem in getattr(result, "errors", ()):
        print(f"{PROG}: warning: {' '.join(str(problem).split())}", file=sys.stderr)
    print(summary(index_path, result))
    return 0


def summary(index_path: Path, report: Any) -> str:
    """The one line ``footnote index`` prints for an ``IngestReport``."""
    counts = (
        f"{report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged"
    )
    skipped = getattr(report, "skipped", 0)
    if skipped:
        counts += f", {skipped} skipped"
    documents = getattr(report, "documents", None)
    total = ""
    if documents is not None:
        total = f"; {documents} document{'' if documents == 1 else 's'} in the index"
    return f"indexed into {index_path}: {counts}{total} ({report.seconds:.1f}s)"


def only_exception(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: list[str] | None = None) -> int:
    """Run the ``footnote`` command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.code
    except BaseExceptionGroup as group:  # a task group's wrapping of a single failure
        leaf = only_exception(group)
        if isinstance(leaf, CliError):
            print(f"{PROG}: error: {leaf.message}", file=sys.stderr)
            return leaf.code
        if isinstance(leaf, KeyboardInterrupt):
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        detail = " ".join(str(leaf).split()) or "no details"
        print(f"{PROG}: error: unexpected {type(leaf).__name__}: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`footnote ask ... | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # the last line of defence: one line, never a traceback
        detail = " ".join(str(exc).split()) or "no details"
        print(f"{PROG}: error: unexpected {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
