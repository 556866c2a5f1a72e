"""The timeline's numbers without a figure: shares per version over time, folded into at most
twelve bands, binned by time under a point budget, and events thinned (every rollback kept)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from rollbackkit.ops.timeline_shares import EVENT_BUDGET, MAX_VERSIONS, drawn_events, is_folded, share_bands
from rollbackkit.ops.timeline_types import ServingNow, Span, Timeline, TimelineEvent

from .timeline_hosts import fake_timeline

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_canary_and_its_shadow_read_as_shares_that_add_up_at_every_change() -> None:
    spans: dict[str, tuple[Span, ...]] = {
        "v1": (Span("v1", _at(0), _at(10), 100.0, "live", "a"), Span("v1", _at(10), _at(30), 90.0, "live", "b")),
        "v2": (Span("v2", _at(5), _at(10), 25.0, "shadow", "s"), Span("v2", _at(10), _at(30), 10.0, "canary", "b")),
    }
    t = Timeline("model", "prod", _at(0), _at(30), spans, (), ServingNow("v1", 90.0, "b", "v2", 10.0))
    bands = share_bands(t)
    assert bands.versions == ("v1", "v2") and not bands.binned  # a shadow takes no share and no edge
    assert [datetime.fromtimestamp(x, UTC) for x in bands.edges] == [_at(0), _at(10), _at(30)]
    assert bands.shares.tolist() == [[100.0, 90.0], [0.0, 10.0]] and bands.points == 6
    assert bands.within(6) is bands
    binned = bands.within(4)  # 2 bins of 15 minutes: v1 held 100% for 10 of the first 15, 90% after
    assert binned.binned and binned.points <= 6
    assert np.allclose(binned.shares, [[(100 * 10 + 90 * 5) / 15, 90.0], [10 * 5 / 15, 10.0]])


def test_forty_versions_fold_into_twelve_bands_binned_under_the_budget() -> None:
    t = fake_timeline(versions=40, changes=6000)
    bands = share_bands(t)
    assert len(bands.versions) == MAX_VERSIONS and bands.versions[-1] == "29 other versions"
    assert is_folded(bands.versions[-1]) and not any(is_folded(v) for v in bands.versions[:-1])
    assert t.serving_now is not None and t.serving_now.version in bands.versions  # what serves is never folded
    assert np.allclose(bands.shares.sum(axis=0), 100.0)  # folding loses no traffic
    binned = bands.within(7_000)
    assert binned.binned and binned.points <= 7_000 and binned.edges[0] == bands.edges[0]
    assert binned.edges[-1] == bands.edges[-1]
    assert np.allclose(binned.shares.sum(axis=0), 100.0, atol=0.05)  # binned means still add up
    served = bands.shares @ np.diff(bands.edges)  # each band's traffic over the whole time, kept by binning
    assert np.allclose(binned.shares @ np.diff(binned.edges), served)


def test_events_thin_evenly_but_every_rollback_breach_and_runbook_stays() -> None:
    t = fake_timeline(versions=5, changes=6000)
    rare = [TimelineEvent(_at(i), "auto-rollback", "v1.1.0", "errors", "watchdog") for i in range(50)]
    events = sorted([*t.events, *rare], key=lambda e: e.time)
    drawn = drawn_events(events)
    assert len(drawn.events) == EVENT_BUDGET and drawn.total == 6050
    assert sum(e.kind == "auto-rollback" for e in drawn.events) == 50
    assert [e.time for e in drawn.events] == sorted(e.time for e in drawn.events)
    assert drawn.note == "3,000 of 6,050 events drawn (every rollback, breach and runbook among them)"
    few = drawn_events(events[:10])
    assert few.events == tuple(events[:10]) and few.note == ""
    flood = drawn_events([replace(e, kind="gate-breach") for e in events[:200]], budget=100)
    assert flood.events == tuple(replace(e, kind="gate-breach") for e in events[100:200])  # the latest
