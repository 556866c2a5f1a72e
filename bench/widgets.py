"""Jupyter panel benchmark (results to bench/results/widgets.json).

1. The DriftPanel with 10 million reference and 10 million current values: building it (bins,
   figure, all drift metrics), switching to the ECDF, and back (target: an update under a second).
2. Drift over time on a DuckDB log of 10,000,000 rows in 24 windows, as a user runs it:
   ``rollbackkit.drift_over_time`` on a registered project (no server: the log file) + the figure,
   for the primary output and an input feature (median, min, max of 5 runs, the load average),
   and the FigureWidget panel (warm; cold: a fresh Python, imports included); target < 1 s.
   Against the naive peer: pandas over the raw rows (fetch, cut into windows, numpy histogram +
   PSI per window) and plotting the raw points (a plotly figure of every row, serialised).
3. The timeline of 1,000 assignments (``timeline()`` + ``timeline_figure()``; target < 300 ms).
4. The points each panel's figure sends on large inputs (timeline, drift over time, gates over
   time, rollback preview; each <= MAX_POINTS); a builder not importable is skipped with its reason.

``--quick``: 1,000,000 logged rows instead of 10,000,000. ``--postgres``: only the PostgreSQL
section (drift over time of an input feature on a store: in SQL, beside the blobs, and the DuckDB
log of the same rows; :mod:`bench._pg_drift`), merged into the results, the other sections kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import ENV, git, new_project, write_results
from bench._drift_log import drift_project

ROWS = 1_000_000 if "--quick" in sys.argv else 10_000_000
WINDOWS = 24
ASSIGNMENTS = 1000


def _best(action: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    """The fastest of ``runs`` timings (wall seconds) and the last result."""
    return _timed(action, runs)[0], _timed.last  # type: ignore[attr-defined]


def _timed(action: Callable[[], Any], runs: int = 3) -> tuple[float, float]:
    """The fastest wall and CPU seconds (this process, every thread: DuckDB's too) of ``runs`` runs.

    CPU seconds stay meaningful on a machine others share: wall time there includes waiting for a core.
    """
    wall, cpu = float("inf"), float("inf")
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        _timed.last = action()  # type: ignore[attr-defined]
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - used)
    return wall, cpu


def _spread(action: Callable[[], Any], runs: int = 5, warmup: bool = False) -> dict[str, Any]:
    """Median, min and max of ``runs`` runs (wall and CPU seconds), with the 1-minute load average
    before and after (the last result in ``_spread.last``); ``warmup``: one untimed run first."""
    if warmup:
        action()
    load = os.getloadavg()[0]
    walls, cpus = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        _spread.last = action()  # type: ignore[attr-defined]
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - used)
    return {
        "median_s": float(np.median(walls)),
        "min_s": min(walls),
        "max_s": max(walls),
        "median_cpu_s": float(np.median(cpus)),
        "runs": runs,
        "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def drift_panel() -> dict[str, Any]:
    """DriftPanel updates on 10M vs 10M values."""
    from rollbackkit.widgets import DriftPanel

    rng = np.random.default_rng(0)
    reference, current = rng.normal(0, 1, 10_000_000), rng.normal(0.1, 1.1, 10_000_000)
    started = time.perf_counter()
    panel = DriftPanel(reference, current)
    build = time.perf_counter() - started
    timings: dict[str, list[float]] = {}
    for view in ("ECDF", "histogram", "ECDF"):
        started = time.perf_counter()
        panel.view.value = view
        timings.setdefault(view, []).append(time.perf_counter() - started)
    return {
        "build_with_metrics_s": build,
        "update_to_ecdf_s": min(timings["ECDF"]),
        "update_to_histogram_s": timings["histogram"][0],
        "points_sent_to_plotly": sum(len(t.x) for t in panel.figure.data),
    }


def _ours(root: Path, column: str | None) -> Any:
    """What a user runs: ``drift_over_time`` on the registered project (the log file, no server) and its figure."""
    from rollbackkit.ops.drift_series import drift_over_time
    from rollbackkit.widgets.drift_time import drift_time_figure

    series = drift_over_time(root, "churn", "prod", column, windows=WINDOWS)
    return series, drift_time_figure(series)


def _panel(root: Path, column: str | None) -> Any:
    """The Jupyter panel itself (FigureWidgets: line, heatmap), built as a notebook cell builds it."""
    from rollbackkit.widgets.drift_time import DriftOverTimePanel

    panel = DriftOverTimePanel(root, "churn", "prod", column, windows=WINDOWS)
    assert panel.series is not None, "the panel shows an error"
    return panel


_COLD = """
import sys, time
started = time.perf_counter()
from rollbackkit.widgets.drift_time import DriftOverTimePanel
panel = DriftOverTimePanel(sys.argv[1], "churn", "prod", None if sys.argv[2] == "-" else sys.argv[2], windows=24)
assert panel.series is not None, "the panel shows an error"
print(time.perf_counter() - started)
"""


def _cold(root: Path, column: str | None, runs: int = 3) -> dict[str, Any]:
    """The panel in a fresh Python (imports included), as the first cell of a new kernel builds it."""
    seconds = [
        float(
            subprocess.run(
                [sys.executable, "-c", _COLD, str(root), column or "-"], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(runs)
    ]
    return {"median_s": float(np.median(seconds)), "min_s": min(seconds), "max_s": max(seconds), "runs": runs}


def _naive(path: Path, reference: np.ndarray, plot: bool) -> Any:
    """The peer: every row into pandas, cut into 24 windows, numpy histogram + PSI per window (and
    with ``plot`` a plotly figure of every raw point, serialised as it goes to the browser)."""
    import duckdb
    import pandas as pd

    from rollbackkit.analysis.drift_formulas import psi

    con = duckdb.connect(str(path), read_only=True)
    try:
        frame = con.execute(
            "SELECT time, primary_output FROM predictions WHERE name = 'churn' AND env = 'prod'"
        ).fetchdf()
    finally:
        con.close()
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    expected = np.histogram(reference, edges)[0] / reference.size
    windows = pd.cut(frame["time"], WINDOWS, labels=False)
    values = [
        psi(expected, np.histogram(group.to_numpy(), edges)[0] / max(len(group), 1))
        for _, group in frame["primary_output"].groupby(windows)
    ]
    if plot:
        import plotly.graph_objects as go

        figure = go.Figure(go.Scattergl(x=frame["time"], y=frame["primary_output"], mode="markers"))
        figure.to_json()
    return values


def drift_over_time(work: Path) -> dict[str, Any]:
    """Ours (what a user runs, on a registered project) vs the naive peer on a log file of ROWS rows."""
    from rollbackkit.widgets._common import points_in

    started = time.perf_counter()
    root = drift_project(work / "drift", ROWS)
    generated = time.perf_counter() - started
    path = root / ".rollbackkit" / "local" / "predictions.duckdb"
    reference = np.random.default_rng(3).normal(0.5, 0.17, 100_000)
    primary = _spread(lambda: _ours(root, None))
    series, figure = _spread.last  # type: ignore[attr-defined]
    feature = _spread(lambda: _ours(root, "income"))
    by_version = _spread(lambda: drift_over_time_by(root, "version"), runs=3)
    started = time.perf_counter()
    _panel(root, None)
    first_panel = time.perf_counter() - started
    panel_warm = _spread(lambda: _panel(root, None))
    panel_feature_warm = _spread(lambda: _panel(root, "income"), runs=3, warmup=True)
    naive, naive_cpu = _timed(lambda: _naive(path, reference, plot=False), runs=2)
    naive_plot, _ = _best(lambda: _naive(path, reference, plot=True), runs=1)
    return {
        "rows": ROWS,
        "windows": WINDOWS,
        "log_generated_s": generated,
        "user_path": "rollbackkit.ops.drift_series.drift_over_time on a registered project (log file, no server) "
        "+ drift_time_figure",
        "primary_output": primary,
        "input_feature_income": feature,
        "primary_output_by_version": by_version,
        "panel_warm": panel_warm,
        "panel_warm_input_feature": panel_feature_warm,
        "panel_first_in_this_process_s": first_panel,
        "panel_cold_new_python": _cold(root, None),
        "naive_pandas_metrics_s": naive,
        "naive_pandas_metrics_cpu_s": naive_cpu,
        "naive_pandas_metrics_and_raw_plot_s": naive_plot,
        "ratio_naive_over_ours_median": naive / primary["median_s"],
        "ratio_naive_with_plot_over_ours_median": naive_plot / primary["median_s"],
        "points_sent": points_in(figure),
        "rows_in_series": int(series.n.sum()),
        "postgres_input_feature": "see drift_over_time_postgres_1M / _10M (python -m bench.widgets --postgres)",
    }


def drift_over_time_by(root: Path, by: str) -> Any:
    """``drift_over_time`` sliced by ``by`` (versions)."""
    from rollbackkit.ops.drift_series import drift_over_time as ours

    return ours(root, "churn", "prod", windows=WINDOWS, by=by)


def _assignments(root: Path) -> None:
    """Register v1.0.0 and v1.1.0, deploy once for real, then write 999 more assignment tags
    (deploys, canaries, promotions, rollbacks, a minute apart) in one ``git fast-import`` stream."""
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from rollbackkit import Registry
    from rollbackkit.ops.traffic import deploy
    from rollbackkit.registry.tags import assignment_message

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300), "y": rng.integers(0, 2, 300)})
    model = DummyClassifier(strategy="prior").fit(frame[["x1", "x2"]], frame["y"])
    registry = Registry(root)
    for version in ("v1.0.0", "v1.1.0"):
        registry.register("model", model, frame, target="y", version=version)
    deploy(root, "model@v1.0.0", "prod", reason="first release")
    commits = {v: git(root, "rev-list", "-n", "1", f"model@{v}").strip() for v in ("v1.0.0", "v1.1.0")}
    stamp, chunks = 1_760_000_000, []
    cycle = [
        ("v1.1.0", "canary", 10),
        ("v1.1.0", "canary", 50),
        ("v1.1.0", "promote", None),
        ("v1.0.0", "rollback", None),
    ]
    for n in range(2, ASSIGNMENTS + 1):
        version, action, percent = cycle[n % len(cycle)]
        meta = {
            "action": action, "reason": f"step {n}", "incident": "", "actor": "bench", "forced": False,
            "gates": "", "canary_percent": percent, "version": version,
        }  # fmt: skip
        message = assignment_message("model", version, "prod", action, f"step {n}", meta).encode()
        chunks += [
            f"tag model#prod#{n}".encode(),
            f"from {commits[version]}".encode(),
            f"tagger bench <bench@example.com> {stamp + 60 * n} +0000".encode(),
            f"data {len(message)}".encode(),
            message,
        ]
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet"], input=b"\n".join(chunks) + b"\n", check=True, env=ENV
    )


def timeline(work: Path) -> dict[str, Any]:
    """A's ``timeline()`` + ``timeline_figure()`` on 1,000 assignments."""
    try:
        from rollbackkit.ops.timeline import timeline as read_timeline
        from rollbackkit.widgets._common import points_in
        from rollbackkit.widgets.timeline_figure import timeline_figure
    except ImportError as exc:
        return {"skipped": f"the timeline has not landed: {exc}"}
    root = new_project(work / "timeline")
    _assignments(root)
    seconds, (found, figure) = _best(lambda: _timeline_and_figure(root, read_timeline, timeline_figure), runs=5)
    return {
        "assignments": ASSIGNMENTS,
        "timeline_and_figure_s": seconds,
        "events": len(found.events),
        "points_sent": points_in(figure),
    }


def _timeline_and_figure(root: Path, read: Any, draw: Any) -> tuple[Any, Any]:
    found = read(root, "model", "prod")
    return found, draw(found)


def main() -> Path:
    """Run the widget benchmarks and write bench/results/widgets.json."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        over_time = drift_over_time(work)
        timeline_figures = timeline(work)
    from bench.widget_points import panel_points

    return write_results(
        "widgets",
        {
            **_postgres_sections(),  # measured apart (--postgres): kept, not lost to this run
            "drift_panel_10M_vs_10M": drift_panel(),
            "drift_over_time": over_time,
            "timeline": timeline_figures,
            "points_per_panel": {
                "drift_over_time": over_time["points_sent"],
                "timeline": timeline_figures.get("points_sent", timeline_figures.get("skipped")),
                **panel_points(),
            },
            "targets": {
                "update_s_max": 1.0,
                "drift_over_time_s_max": 1.0,
                "timeline_s_max": 0.3,
                "points_max": 10_000,
            },
        },
    )


def _postgres_sections() -> dict[str, object]:
    """The PostgreSQL sections already in bench/results/widgets.json (``--postgres`` writes them)."""
    import json

    from bench._common import RESULTS

    out = RESULTS / "widgets.json"
    kept = json.loads(out.read_text()) if out.exists() else {}
    return {key: value for key, value in kept.items() if key.startswith(("drift_over_time_postgres_", "postgres_"))}


def postgres_section() -> Path:
    """Only the PostgreSQL sections (``--postgres``): drift over time of an input feature on a store,
    in SQL and beside the blobs, next to the DuckDB log; and the writer's cost of a batch with its
    input columns kept and without (``postgres_write_cost``); merged into bench/results/widgets.json."""
    import json
    from datetime import UTC, datetime

    from bench._common import RESULTS
    from bench._pg_drift import compare
    from bench._pg_write import write_cost

    out = RESULTS / "widgets.json"
    kept = json.loads(out.read_text()) if out.exists() else {"benchmark": "widgets"}
    with tempfile.TemporaryDirectory() as folder:
        figures = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "load_1min_before": os.getloadavg()[0]}
        figures |= compare(Path(folder), ROWS)
        load = os.getloadavg()[0]
        writes = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "load_1min_before": load}
        writes |= write_cost(Path(folder))
    key = f"drift_over_time_postgres_{ROWS // 1_000_000}M"
    out.write_text(json.dumps({**kept, key: figures, "postgres_write_cost": writes}, indent=2) + "\n")
    return out


if __name__ == "__main__":
    print(postgres_section() if "--postgres" in sys.argv else main())
