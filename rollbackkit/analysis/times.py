"""One rule for a time a user gives (``since``, ``until``, ``start``, ``end``): :func:`when`.

Every panel, ops call and admin body reads a user's time here. An aware time is taken as it is;
a NAIVE one (a notebook's ``datetime.now()``, a pandas Timestamp without tz, an ISO string
without offset) is the LOCAL time of the process reading it, as a notebook user means it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timezone
from typing import overload

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput

TimeLike = str | datetime | date | np.datetime64
"""What :func:`when` reads: ISO 8601 text, a datetime or pandas Timestamp, a date, a numpy datetime64."""


@overload
def when(value: None, what: str) -> None: ...


@overload
def when(value: TimeLike, what: str) -> pd.Timestamp: ...


def when(value: TimeLike | None, what: str) -> pd.Timestamp | None:
    """``value`` as an aware UTC Timestamp (None stays None); naive means local time (see the module).

    Raises:
        InvalidInput: ``value`` is no time; the message names the parameter ``what``.
    """
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | datetime | date | np.datetime64):
            raise ValueError
        stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
        if pd.isna(stamp):
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"{what}={value!r} is not a time.", "Give an ISO 8601 time such as 2026-01-05T09:30:00+00:00."
        ) from None
    if stamp.tzinfo is None:  # local time, with the offset the local zone had at that moment
        offset = stamp.to_pydatetime(warn=False).astimezone().utcoffset()
        stamp = stamp.tz_localize(timezone(offset) if offset is not None else UTC)
    return stamp.tz_convert("UTC")
