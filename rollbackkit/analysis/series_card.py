"""The card (:mod:`rollbackkit.cards`) of a drift series: its worst cells at a glance.

Typed ``Any`` because :mod:`rollbackkit.analysis.drift_series` imports this module lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollbackkit.cards import Card, Section, clock, number

WORST = 8
"""Cells (slice x window) a drift series' card lists, the highest metric first."""


def drift_series_card(d: Any) -> Card:
    """Column, metric, span, cells over the threshold, and the worst cells (low-n ones marked)."""
    values = np.asarray(d.values, dtype="float64")
    known = np.isfinite(values)
    order = np.argsort(np.where(known, -values, np.inf), axis=None, kind="stable")[: min(WORST, int(known.sum()))]
    worst = []
    for flat in order:
        i, w = np.unravel_index(int(flat), values.shape)
        start, end = d.windows[w]
        low = " (low n)" if d.low_n[i, w] else ""
        worst.append((d.slices[i], f"{clock(start, day=True)} - {clock(end)}", number(float(values[i, w])),
                      f"{int(d.n[i, w]):,}{low}"))  # fmt: skip
    over = int(np.sum(known & (values > d.threshold))) if d.threshold is not None else None
    span = f"{clock(d.windows[0][0], day=True)} - {clock(d.windows[-1][1], day=True)}" if d.windows else ""
    return Card(
        f"Drift of {d.column} over time ({d.metric})",
        status=None if over is None else ("fail" if over else "pass"),
        fields=[
            ("version", d.version),
            ("by", d.by),
            ("windows", f"{len(d.windows)}, {span}" if d.windows else "none"),
            ("slices", len(d.slices) if d.by else None),
            ("compared with", d.compared_with),
            ("threshold", d.threshold),
            ("cells over it", None if over is None else f"{over} of {int(known.sum())}"),
            ("rows", f"{int(np.sum(d.n)):,} binned, {int(np.sum(d.missing)):,} missing"),
        ],
        notes=list(d.notes),
        sections=[Section("Worst cells", worst, ("slice", "window", d.metric, "rows"), count=int(known.sum()))]
        if worst
        else [],
        css="rollbackkit-drift-card",
    )
