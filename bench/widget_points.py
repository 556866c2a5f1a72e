"""Points sent by the gates-over-time and rollback-preview figures on large inputs (bench/widgets.py).

Gates over time: 20,000 recorded evaluations of 3 gates and 50 rollbacks into ``gates_figure``.
Preview: 200,000 scored rows in 5,000 distinct slices through ``deltas_by_slice`` into
``preview_figure``. A builder that is not importable is reported as skipped, with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np


def gates_points() -> Any:
    """Points of ``gates_figure`` for 20,000 evaluations (or why it was skipped)."""
    try:
        from rollbackkit.ops.gate_history import GateEvaluation, GateHistory, GateSeen, RollbackMark
        from rollbackkit.widgets._common import points_in
        from rollbackkit.widgets.gates_time import gates_figure
    except ImportError as exc:
        return f"skipped: gates over time has not landed ({exc})"
    start, rng = datetime(2026, 3, 1, tzinfo=UTC), np.random.default_rng(0)
    evaluations = tuple(
        GateEvaluation(
            time=start + timedelta(seconds=5 * k),
            deployment="model#prod#2",
            version="v1.1.0",
            role="canary",
            decision="pass",
            n=5000,
            gates=tuple(
                GateSeen(
                    name=name,
                    kind=kind,
                    severity="rollback",
                    status="fail" if v > 0.95 else "pass",
                    value=float(v),
                    threshold={"max": 0.95},
                )
                for (name, kind), v in zip(
                    (("p99", "latency"), ("errors", "error_rate"), ("drift", "prediction_drift")),
                    rng.random(3),
                    strict=True,
                )
            ),
        )
        for k in range(20_000)
    )
    marks = tuple(
        RollbackMark(start + timedelta(hours=k), "v1.0.0", "v1.1.0", "bench", automatic=True) for k in range(50)
    )
    return points_in(gates_figure(GateHistory("model", "prod", evaluations, marks)))


def preview_points() -> Any:
    """Points of ``preview_figure`` for 200,000 rows in 5,000 slices (or why it was skipped)."""
    try:
        import pandas as pd

        from rollbackkit.analysis.preview import deltas_by_slice
        from rollbackkit.ops.preview import RollbackPreview
        from rollbackkit.widgets._common import points_in
        from rollbackkit.widgets.preview import preview_figure
    except ImportError as exc:
        return f"skipped: the rollback preview has not landed ({exc})"
    rng = np.random.default_rng(1)
    before, after = pd.Series(rng.random(200_000)), pd.Series(rng.random(200_000))
    flips = (before > 0.5).to_numpy() != (after > 0.5).to_numpy()
    slices = deltas_by_slice(before, after, flips, pd.Series(rng.integers(0, 5000, 200_000)))
    from rollbackkit.ops.preview_parts import VersionPreview

    part = VersionPreview("v1.1.0", "live", 100.0, 200_000, None, None, float(flips.mean()), slices, [], None)
    preview = RollbackPreview(
        name="model", env="prod", to_version="v1.0.0", parts=[part], kind="classification", primary="p_yes",
        score="p_yes", threshold=0.5, by="segment", preflight=None, from_version="v1.1.0",
    )  # fmt: skip
    return points_in(preview_figure(preview))


def panel_points() -> dict[str, Any]:
    """The gates-over-time and preview figures' points on large inputs."""
    out = {}
    for key, measure in (("gates_over_time", gates_points), ("preview", preview_points)):
        try:
            out[key] = measure()
        except Exception as exc:  # another helper's builder changed shape: say so, keep the other figures
            out[key] = f"skipped: {type(exc).__name__}: {exc}"
    return out
