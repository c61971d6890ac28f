"""Plain-text tables (GitHub-flavoured markdown, aligned) and number formatting."""

from __future__ import annotations

import math
from collections.abc import Sequence

Cell = str | int | float | None


def fmt(value: Cell, digits: int = 0) -> str:
    """A cell: ``-`` for None/NaN, floats with ``digits`` decimals, the rest as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; the first column is left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if i else ":" + "-" * (w + 1) for i, w in enumerate(widths)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in rows)])


def section(title: str, body: str, notes: Sequence[str] = ()) -> str:
    """A titled block: ``## title``, the body, then notes as plain lines."""
    parts = [f"## {title}", "", body]
    if notes:
        parts += ["", *notes]
    return "\n".join(parts) + "\n"
