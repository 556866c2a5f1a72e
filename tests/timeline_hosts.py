"""Helpers for the timeline tests: a large synthetic timeline, and the hosts a panel runs under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from rollbackkit.ops.timeline_types import ServingNow, Span, Timeline, TimelineEvent


def fake_timeline(versions: int, changes: int, seed: int = 0) -> Timeline:
    """``changes`` deploys and canaries among ``versions`` versions, a minute apart (no repository)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    names = [f"v1.{i}.0" for i in range(versions)]
    spans: dict[str, list[Span]] = {}
    events = []
    live = names[0]
    for i in range(changes):
        begin, end = start + timedelta(minutes=i), start + timedelta(minutes=i + 1)
        new = names[int(rng.integers(versions))]
        canary = int(rng.choice([0, 10, 50])) if new != live else 0
        if canary:
            spans.setdefault(live, []).append(Span(live, begin, end, 100.0 - canary, "live", f"m#p#{i}"))
            spans.setdefault(new, []).append(Span(new, begin, end, float(canary), "canary", f"m#p#{i}"))
            events.append(TimelineEvent(begin, "canary", new, "try it", "ada", share=float(canary)))
        else:
            live = new
            spans.setdefault(live, []).append(Span(live, begin, end, 100.0, "live", f"m#p#{i}"))
            events.append(TimelineEvent(begin, "deploy", live, "release", "ada", share=100.0))
    end = start + timedelta(minutes=changes)
    now = ServingNow(live, 100.0, f"m#p#{changes}")
    return Timeline("model", "prod", start, end, {k: tuple(v) for k, v in spans.items()}, tuple(events), now)
