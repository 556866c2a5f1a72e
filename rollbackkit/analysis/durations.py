"""Durations as people write them in ``gates.yaml`` and on the command line.

A duration is a number of seconds (``90``, ``2.5``) or a string with one unit: ``"30s"``,
``"10m"``, ``"2h"``, ``"1d"`` (a bare number in a string is seconds too). Read by
:func:`parse_duration`; said back by :func:`format_duration` (``"2m"``, ``"1h30m"``).
"""

from __future__ import annotations

import math
import re

from rollbackkit.errors import InvalidInput

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
MAX_DURATION = 366 * 86400.0
"""The longest duration accepted (a year): anything longer is a typo, not a bake."""


def duration_seconds(value: object) -> float:
    """``value`` in seconds, or ValueError saying what a duration looks like."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a duration such as 30s, 10m, 2h")
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as 30s, 10m, 2h")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration such as 30s, 10m, 2h (it must be 0 or more)")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than a year")
    return seconds


def parse_duration(value: str | float | int, what: str) -> float:
    """A duration in seconds; InvalidInput naming ``what`` (``--bake: '10x' is not a duration ...``)."""
    try:
        return duration_seconds(value)
    except ValueError as exc:
        raise InvalidInput(
            f"{what}: {exc}.", "Write seconds (90) or a number with s, m, h or d (30s, 10m, 2h)."
        ) from exc


def format_duration(seconds: float) -> str:
    """Seconds in short words: ``40s``, ``2m``, ``1h30m``, ``2d``, ``0.5s``."""
    if seconds < 60:
        return f"{seconds:.0f}s" if float(seconds).is_integer() or seconds >= 10 else f"{seconds:.1f}s"
    whole = round(seconds)
    text = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            text += f"{count}{unit}"
    return text
