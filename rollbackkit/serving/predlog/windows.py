"""The time windows of a binned request: its range, a row's window (SQL and numpy), times as microseconds.

Split from :mod:`rollbackkit.serving.predlog.binning` (which re-exports these names).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from rollbackkit.analysis.times import when


class Ranged(Protocol):
    """A request with a time range (a :class:`~rollbackkit.serving.predlog.binning.BinRequest`)."""

    @property
    def start(self) -> datetime | None: ...

    @property
    def end(self) -> datetime | None: ...


def moment(value: str | datetime | None, what: str = "time") -> datetime | None:
    """An ISO text or datetime as an aware datetime, by the one rule (naive: local time) of
    :func:`rollbackkit.analysis.times.when`."""
    stamp = when(value, what)
    return None if stamp is None else stamp.to_pydatetime()


def time_range(req: Ranged, first_last: Callable[[], Sequence[Any] | None]) -> tuple[int, int] | None:
    """The counted range in microseconds: ``start``/``end``, else the first/last row's time
    (``first_last()``: ``(min(t_us), max(t_us))``); None when no row is in it."""
    lo, hi = micros(req.start) if req.start else None, micros(req.end) if req.end else None
    if lo is None or hi is None:
        first, last = first_last() or (None, None)
        if first is None or last is None:
            return None
        lo, hi = int(first) if lo is None else lo, int(last) if hi is None else hi
    return lo, hi


def window_sql(start_us: int, end_us: int, windows: int, dialect: str) -> str:
    """SQL giving a row's window from ``t_us`` (equal windows over ``[start, end]``, ``end`` in the last)."""
    span = max(end_us - start_us, 1)
    divide = "//" if dialect == "duckdb" else "/"
    return f"least((t_us - {int(start_us)}) * {int(windows)} {divide} {span}, {int(windows) - 1})"


def window_index(t_us: np.ndarray, start_us: int, end_us: int, windows: int) -> np.ndarray:
    """:func:`window_sql` in numpy."""
    span = max(end_us - start_us, 1)
    return np.minimum((t_us.astype("int64") - start_us) * windows // span, windows - 1)


def micros(moment: datetime) -> int:
    """A time as microseconds since the epoch (as the logs' SQL computes ``t_us``)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso(us: int | None) -> str | None:
    """Microseconds since the epoch as ISO 8601 text in UTC (None stays None)."""
    if us is None:
        return None
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))).isoformat()
