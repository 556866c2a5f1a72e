"""A time the user gives (``since``/``until``) means one instant in every panel and ops call.

The on-call's notebook runs in New York: ``datetime.now()`` is local, a pandas Timestamp from a
log file has no zone, an ISO string is typed without offset. Drift over time, the timeline and
gates over time must all read such a time as the same (local) instant, and a bad one is one
line naming the parameter.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rollbackkit
from rollbackkit.analysis.times import when
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.bodies import GateHistoryBody


def test_naive_times_are_local_and_aware_ones_kept(new_york: None) -> None:
    utc = pd.Timestamp("2026-03-01T12:00:00+00:00")
    for naive in ("2026-03-01T07:00:00", "2026-03-01 07:00", datetime(2026, 3, 1, 7), pd.Timestamp("2026-03-01 07:00")):
        assert when(naive, "since") == utc, naive
    assert when(np.datetime64("2026-07-01T08:00"), "since") == pd.Timestamp("2026-07-01T12:00Z")  # summer: EDT
    assert when("2026-03-01T12:00:00Z", "since") == utc and when(None, "since") is None
    assert (
        GateHistoryBody.model_validate({"since": "2026-03-01T07:00"}).since == utc.isoformat()
    )  # an admin body: the same rule
    for bad in ("yesterday-ish", "", 17, True):
        with pytest.raises(InvalidInput, match=r"^until=.* is not a time"):
            when(bad, "until")  # type: ignore[arg-type]


def test_one_naive_since_picks_the_same_instant_in_drift_timeline_and_gates(logged: Path, new_york: None) -> None:
    [mark] = rollbackkit.gate_history(logged, "churn", "prod").rollbacks
    before = (mark.time - timedelta(minutes=1)).astimezone().replace(tzinfo=None)  # the notebook's local clock
    for since in (before, before.isoformat(), pd.Timestamp(before)):
        gates = rollbackkit.gate_history(logged, "churn", "prod", since=since)
        assert [m.time for m in gates.rollbacks] == [mark.time], since  # read as UTC, it would be 5 h later
        line = rollbackkit.timeline(logged, "churn", "prod", since=since)
        assert any(e.kind.endswith("rollback") for e in line.events), since
        drift = rollbackkit.drift_over_time(logged, "churn", "prod", windows=2, since=since, until=mark.time)
        assert drift.windows[0][0] == mark.time - timedelta(minutes=1)
    after = (mark.time + timedelta(seconds=1)).astimezone().replace(tzinfo=None)
    assert rollbackkit.gate_history(logged, "churn", "prod", since=after).rollbacks == ()
    assert not any(
        e.kind.endswith("rollback") for e in rollbackkit.timeline(logged, "churn", "prod", since=after).events
    )
    with pytest.raises(InvalidInput, match="since="):
        rollbackkit.timeline(logged, "churn", "prod", since="not a time")
