"""What a timeline figure draws, computed in numpy: each version's share of traffic over time
(at most :data:`MAX_VERSIONS` bands, time-binned under a point budget) and the events kept.

The step function of each version's share is sampled at its change points, or, when that would
send more than ``budget`` points, averaged over equal time bins (the exact share of traffic each
version took in each bin). Pure: no plotting library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollbackkit.ops.timeline_types import Timeline, TimelineEvent

__all__ = [
    "EVENT_BUDGET",
    "MAX_VERSIONS",
    "RARE_KINDS",
    "DrawnEvents",
    "ShareBands",
    "drawn_events",
    "folded_name",
    "is_folded",
    "share_bands",
]

EVENT_BUDGET = 3_000
"""The most event markers drawn (rollbacks, breaches and runbooks first; the rest thinned evenly)."""
MAX_VERSIONS = 12
"""Versions drawn one by one; the rest share one "other versions" band."""
RARE_KINDS = frozenset({"rollback", "auto-rollback", "gate-breach", "runbook"})
"""Event kinds never thinned out (unless they alone exceed the budget: then the latest)."""


@dataclass(frozen=True)
class ShareBands:
    """Share of traffic per version over time, ready to stack.

    Attributes:
        versions: One name per row (the last may be the folded ``"N other versions"`` band).
        edges: Seconds since the epoch, ``len(edges) - 1`` intervals (bin edges when ``binned``).
        shares: ``[row, interval]`` percent of traffic (a time-weighted mean per bin when ``binned``).
        binned: True when the change points were averaged into equal time bins to fit the budget.
    """

    versions: tuple[str, ...]
    edges: np.ndarray
    shares: np.ndarray
    binned: bool = False

    @property
    def points(self) -> int:
        """Points the bands send when drawn as steps (one per edge per row)."""
        return len(self.versions) * len(self.edges) if len(self.edges) >= 2 else 0

    def within(self, budget: int) -> ShareBands:
        """These bands, averaged over equal time bins when their change points would send more than
        ``budget`` points (each row's time-weighted mean share per bin: the traffic it took there)."""
        if self.binned or self.points <= budget:
            return self
        grid, means = _binned(self.edges, self.shares, max(budget // len(self.versions) - 1, 2))
        return ShareBands(self.versions, grid, means, binned=True)


@dataclass(frozen=True)
class DrawnEvents:
    """The events a figure marks (oldest first) and, when some were thinned out, a short note."""

    events: tuple[TimelineEvent, ...]
    total: int
    note: str = ""


def folded_name(count: int) -> str:
    """The name of the band ``count`` folded versions share."""
    return f"{count} other versions"


def is_folded(version: str) -> bool:
    """True for the "N other versions" band (a version name has no spaces)."""
    return version.endswith(" other versions")


def share_bands(t: Timeline) -> ShareBands:
    """Each version's share of traffic in ``t`` at its change points (shadows left out: they take
    none): the most-served :data:`MAX_VERSIONS` - 1 versions (what serves now first) one by one, the
    rest summed in one "N other versions" band. :meth:`ShareBands.within` bins it under a budget."""
    versions, edges, shares = _share_matrix(t)
    versions, shares = _fold_versions(t, versions, shares, edges)
    return ShareBands(tuple(versions), edges, shares)


def drawn_events(events: tuple[TimelineEvent, ...] | list[TimelineEvent], budget: int = EVENT_BUDGET) -> DrawnEvents:
    """At most ``budget`` events: every rollback, breach and runbook (the latest when they alone
    exceed it), the rest thinned evenly over time."""
    events = list(events)
    if len(events) <= budget:
        return DrawnEvents(tuple(events), len(events))
    rare = [e for e in events if e.kind in RARE_KINDS][-budget:]
    common = [e for e in events if e.kind not in RARE_KINDS]
    room = budget - len(rare)
    picked = [common[int(i)] for i in np.linspace(0, len(common) - 1, room)] if room > 0 and common else []
    kept = tuple(sorted([*rare, *picked], key=lambda e: e.time))
    note = f"{len(kept):,} of {len(events):,} events drawn (every rollback, breach and runbook among them)"
    return DrawnEvents(kept, len(events), note)


def _share_matrix(t: Timeline) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Versions, change times ``T`` (seconds) and shares ``[version, interval]`` (``T - 1`` intervals)."""
    traffic = {v: [s for s in spans if s.role != "shadow"] for v, spans in t.spans.items()}
    versions = [v for v, spans in traffic.items() if spans]
    edges = np.unique([x.timestamp() for spans in traffic.values() for s in spans for x in (s.start, s.end)])
    shares = np.zeros((len(versions), max(len(edges) - 1, 0)))
    for row, version in enumerate(versions):
        for s in traffic[version]:
            lo, hi = np.searchsorted(edges, [s.start.timestamp(), s.end.timestamp()])
            shares[row, lo:hi] += s.share
    return versions, edges, shares


def _fold_versions(
    t: Timeline, versions: list[str], shares: np.ndarray, edges: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """At most :data:`MAX_VERSIONS` rows: the most-served versions (and what serves now), then the rest summed."""
    if len(versions) <= MAX_VERSIONS:
        return versions, shares
    served = shares @ np.diff(edges)
    now = t.serving_now
    keep_first = {v for v in (now.version, now.canary) if v} if now else set()
    order = sorted(range(len(versions)), key=lambda i: (versions[i] not in keep_first, -served[i]))
    kept = sorted(order[: MAX_VERSIONS - 1])
    rest = [i for i in range(len(versions)) if i not in set(kept)]
    folded = np.vstack([shares[kept], shares[rest].sum(axis=0, keepdims=True)])
    return [versions[i] for i in kept] + [folded_name(len(rest))], folded


def _binned(edges: np.ndarray, shares: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's time-weighted mean share over ``bins`` equal bins (the traffic it took there)."""
    grid = np.linspace(edges[0], edges[-1], bins + 1)
    integral = np.concatenate([np.zeros((len(shares), 1)), np.cumsum(shares * np.diff(edges), axis=1)], axis=1)
    at_grid = np.vstack([np.interp(grid, edges, row) for row in integral])
    return grid, np.diff(at_grid, axis=1) / np.diff(grid)
