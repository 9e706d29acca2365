"""Durations as people write them on a command line: ``90s``, ``10m``, ``1h30m``, ``2.5``.

``parse`` reads one (a bare number is seconds; units ``s``, ``m``, ``h``, ``d``, combined
largest first as in Go's ``time.ParseDuration``); ``show`` writes one back the short way
(``45s``, ``10m``, ``1h30m``). Pure.
"""

from __future__ import annotations

import math
import re
from typing import Final

_UNITS: Final = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
MAX_SECONDS: Final = 366 * 86400.0  # a year: anything longer is a typo


class DurationError(ValueError):
    pass


def parse(text: str) -> float:
    """Seconds, > 0, from ``text``; DurationError (with the reason) otherwise."""
    raw = text.strip().lower()
    if not raw:
        raise DurationError("a duration is needed, such as 90s, 10m or 1h30m")
    if _NUMBER.fullmatch(raw):
        seconds = float(raw)
    else:
        at = 0
        seconds = 0.0
        order = list(_UNITS)
        last = -1
        for match in _PART.finditer(raw):
            unit = order.index(match.group(2))
            if match.start() != at or unit <= last:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            at, last = match.end(), unit
        if at != len(raw) or last < 0:
            raise DurationError(
                f"{text.strip()!r} is not a duration: write it as 90s, 10m, 1h30m or a "
                "number of seconds"
            )
    if not math.isfinite(seconds) or seconds <= 0:
        raise DurationError(f"{text.strip()!r} is not a duration above zero")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text.strip()!r} is longer than a year")
    return seconds


def show(seconds: float) -> str:
    """``45s``, ``10m``, ``1h30m``, ``2d3h``; fractions of a second below 10 s as ``2.5s``."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    left = round(seconds)
    if left == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        n, left = divmod(left, int(size))
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
