"""Rate specs (``FOOTNOTE_RATE_LIMIT``): parsed here, with nothing heavy imported.

``app.settings`` reads the spec at start-up; ``app.ratelimit`` enforces it.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNITS |= {"h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
# GCRA counts in whole microseconds: a request may not cost less than one (1,000,000/s).
MAX_LIMIT = 1_000_000
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*([a-z]+)\s*)?$")


def parse_rate(text: str) -> tuple[int, float]:
    """``"60"`` or ``"60/min"`` -> ``(60, 60.0)``: requests and the period in seconds.

    A bare number is per minute; units are s, m/min, h/hour, d/day. ``0`` turns limits off.
    Raises ``ValueError`` with a readable message otherwise.
    """
    match = _RATE.match(text.lower())
    if match is None or (match.group(2) is not None and match.group(2) not in _UNITS):
        raise ValueError(
            f"expected requests per minute ('60') or requests per unit ('10/s', '60/min', "
            f"'1000/hour', '10000/day'), got {text!r}"
        )
    limit = int(match.group(1))
    if limit > MAX_LIMIT:
        raise ValueError(f"at most {MAX_LIMIT:,} requests per period, got {text!r}")
    return limit, _UNITS[match.group(2) or "m"]


__all__ = ["MAX_LIMIT", "parse_rate"]
