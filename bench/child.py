"""Spawned child processes driven through a command pipe.

The simulated world (fake SearXNG, simulated web, fake upstream) and Footnote each run in a
``multiprocessing`` *spawn* child whose main thread answers ``(command, args)`` messages while
its servers run in background threads. Keeping them out of the driver's process matters: the
fakes, the HTTP client and Footnote would otherwise share one GIL, and the fakes' CPU time
would show up as Footnote's latency.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

Handler = Callable[[str, tuple[Any, ...]], Any]


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and everything it started.

    ``getrusage`` covers this process (all threads) and the children it has reaped; children
    still running (an extraction process pool, its forkserver) are read from ``/proc``.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total + _live_descendants_cpu()


def _live_descendants_cpu() -> float:
    """CPU seconds of the running descendants of this process (0 where /proc is missing)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        names = os.listdir("/proc")
    except (OSError, ValueError):
        return 0.0
    children: dict[int, list[int]] = {}
    spent: dict[int, float] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        # Fields after the ")" that closes the command name: state ppid ... utime stime.
        fields = raw[raw.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(name))
        spent[int(name)] = (int(fields[11]) + int(fields[12])) / ticks
    total = 0.0
    stack = list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        total += spent.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def serve_commands(conn: Connection, ready: Any, handle: Handler) -> None:
    """Send ``ready`` to the parent, then answer commands until ``stop`` or a closed pipe.

    ``cpu`` is answered here for every child (its ``cpu_seconds()``); anything else goes to
    ``handle``. A handler exception is sent back as an error, never kills the child.
    """
    conn.send(("ok", ready))
    while True:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):
            return
        if command == "stop":
            conn.send(("ok", None))
            return
        try:
            reply = cpu_seconds() if command == "cpu" else handle(command, args)
        except Exception as exc:  # reported to the parent, which raises it there
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", reply))


class ChildError(RuntimeError):
    """A child process failed to start or answered a command with an error."""


class Child:
    """One spawned child running ``target(conn, spec)``; ``call`` sends it commands."""

    def __init__(self, target: Callable[[Connection, Any], None], spec: Any, name: str) -> None:
        """Prepare (not start) the child; ``spec`` must be picklable."""
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._conn, child_conn = context.Pipe()
        # Not a daemon: the service may start its own worker processes (an extraction pool),
        # which daemonic processes may not. ``stop`` (called from a ``finally``) ends it.
        self._process = context.Process(
            target=target, args=(child_conn, spec), name=name, daemon=False
        )
        self._child_conn = child_conn

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        """The child's exit code (negative: killed by that signal), None while it runs.

        Waits up to half a second for a dying child to be reaped (asked after a failure).
        """
        if self._process.pid is not None:
            self._process.join(0.5)
        return self._process.exitcode

    def start(self, timeout: float = 120.0) -> Any:
        """Start the child and return what it sent once ready."""
        self._process.start()
        self._child_conn.close()
        return self._reply(timeout)

    def call(self, command: str, *args: Any, timeout: float = 60.0) -> Any:
        """Send ``command`` with ``args`` and return the child's answer."""
        self._conn.send((command, args))
        return self._reply(timeout)

    def _reply(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            alive = self._process.is_alive()
            raise ChildError(f"{self.name}: no answer within {timeout:g}s (alive={alive})")
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise ChildError(f"{self.name} exited (code {self._process.exitcode})") from None
        if status != "ok":
            raise ChildError(f"{self.name}: {value}")
        return value

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to stop; end it (this process only, by its handle) if it will not."""
        if self._process.is_alive():
            with contextlib.suppress(ChildError, OSError, EOFError):
                self.call("stop", timeout=timeout)
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5.0)
        self._conn.close()
