"""The Jupyter panels, built on a project with real logged traffic (no kernel needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from rollbackkit.cards import tint
from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.widgets import (
    DriftPanel,
    GatesPanel,
    RollbackConsole,
    RunbookPanel,
    SchemaDiffPanel,
    TimelinePanel,
    VersionExplorer,
)

from .conftest import BIN

ADDED = sorted(set(ALL_FEATURES) - set(BASE_FEATURES))


def test_the_console_shows_versions_diff_drift_gates_timeline_and_runbooks(logged: Path) -> None:
    console = RollbackConsole(logged, "churn", "prod")
    assert console.tab_titles == [
        "Versions", "Schema diff", "Drift", "Drift over time", "Gates", "Gates over time", "Timeline",
        "Rollback preview", "Runbooks",
    ]  # fmt: skip
    assert "v1.0.0" in console.header.value and "rollbackkit-error" not in console.header.value
    assert "serving prod" in console.header.value  # the badge of what serves now
    assert "Timeline" not in console.panels  # built when first opened

    rows = console.explorer.rows
    assert [r["ref"] for r in rows] == ["churn@v1.0.0", "churn@v1.1.0"]
    assert [r["assignments"] for r in rows] == [["prod:deploy", "prod:rollback"], ["prod:canary"]]
    assert [[n.label() for n in r["now"]] for r in rows] == [["serving prod"], []]  # the canary was rolled back
    assert console.explorer.selection == ("churn@v1.0.0", "churn@v1.1.0")

    console.compare("churn@v1.0.0", "churn@v1.1.0")
    assert console.tabs.selected_index == 1
    assert sorted(console.schema_diff.result.features.added) == ADDED
    table = console.schema_diff.features.value
    assert all(f">{name}<" in table for name in ADDED) and table.count("class='rollbackkit-added'") == len(ADDED)

    drift = console.drift
    assert drift is not None and drift.column.value == "proba_1"
    reference, current = drift.figure.data
    assert (reference.name, current.name) == ("reference", "current")
    assert len(current.x) == drift.bins and abs(sum(current.y) - 1) < 1e-9
    log = PredictionLog(logged / ".rollbackkit" / "local" / "predictions.duckdb")
    canary_rows = log.query("SELECT count(*) AS n FROM predictions_staging WHERE version = 'v1.1.0'")["n"][0]
    log.close()
    assert 0 < canary_rows < 1200 and drift.metric_values["n_cur"] == canary_rows  # exactly the canary's rows
    assert set(drift.slice.options) >= {"(all rows)", "month-to-month"}

    assert console.gates.report is not None
    if console.gates.report.version in ("v1.0.0", "churn@v1.0.0"):
        assert "serving prod" in console.gates.header.value
    assert "v1.0.0 \u25c0 serving now" in {t.name for t in console.timeline.figure.data}  # A's marker of now
    assert {"canary", "deploy", "rollback"} <= {t.name for t in console.timeline.figure.data}
    assert console.runbook.parameters["name"] == "churn" and console.runbook.parameters["env"] == "prod"


def test_drift_panel_bins_ten_million_points_before_plotly() -> None:
    rng = np.random.default_rng(0)
    panel = DriftPanel(rng.normal(0, 1, 10_000_000), rng.normal(0.1, 1.1, 10_000_000), bins=40)
    assert [len(t.x) for t in panel.figure.data] == [40, 40]
    panel.view.value = "ECDF"
    ecdf = panel.figure.data[1]
    assert type(ecdf).__name__ == "Scatter" and len(ecdf.x) == 512
    assert np.all(np.diff(ecdf.y) >= 0) and abs(ecdf.y[-1] - 1) < 1e-9
    assert 0.01 < panel.metric_values["psi"] < 0.2


def test_categorical_columns_and_slices(logged: Path) -> None:
    reference = pd.DataFrame({"plan": ["a"] * 80 + ["b"] * 20, "seg": ["x", "y"] * 50})
    current = pd.DataFrame({"plan": ["a"] * 50 + ["b"] * 30 + ["new"] * 20, "seg": ["x", "y"] * 50})
    panel = DriftPanel(reference, current, column="plan", by="seg")
    assert list(panel.figure.data[1].x) == ["a", "b", "new"]
    assert panel.metric_values["new_category_share"] == pytest.approx(0.2)
    panel.slice.value = "x"
    assert "seg=x" in panel.figure.layout.title.text


def test_gates_panel_highlights_the_failing_slice() -> None:
    report = {
        "version": "churn@v1.1.0",
        "decision": "rollback",
        "gates": [
            {
                "name": "errors",
                "kind": "error_rate",
                "severity": "rollback",
                "status": "pass",
                "observed": 0.0,
                "threshold": {"max": 0.05},
                "evidence": {"errors": 0, "n": 900},
            },
            {
                "name": "p99",
                "kind": "latency",
                "severity": "rollback",
                "status": "insufficient",
                "observed": None,
                "threshold": {"max_ms": 250},
                "evidence": {"reason": "80 samples in the window, 200 needed"},
            },
            {
                "name": "per-contract",
                "kind": "slice",
                "severity": "rollback",
                "status": "fail",
                "observed": 0.41,
                "threshold": {"min": 0.7},
                "evidence": {"metric": "accuracy", "worst_slice": {"contract": "month-to-month"}, "slices": []},
            },
        ],
    }
    panel = GatesPanel(report)
    assert "rollbackkit-rollback" in panel.header.value
    body = panel.body.value
    assert body.count(tint("fail", 0.1)) == 1 and "contract=month-to-month" in body  # the row: the one red, faint
    assert "rollbackkit-failing-slice" in body
    assert "&gt;= 0.7" in body and ">900<" in body and '{"' not in body  # bounds and rows in words, no JSON
    assert "&lt;= 250 ms" in body and "80 samples in the window, 200 needed" in body
    assert body.count("<details class='rollbackkit-gate-evidence' open") == 1  # only the failing gate unfolded


def test_one_palette_and_one_number_format_in_every_panel() -> None:
    from rollbackkit.cards import ACCENT, FAIL, MUTED, PASS, QUIET, SECOND, WARN, badge
    from rollbackkit.widgets.serving_now import tinted

    root = Path(__file__).resolve().parents[1] / "rollbackkit"
    named = {c.lower() for c in (ACCENT, FAIL, MUTED, PASS, QUIET, SECOND, WARN)}
    typed = {
        (str(path.relative_to(root)), colour)
        for path in root.rglob("*.py")
        if path.name != "cards.py"
        for colour in named
        if colour in path.read_text().lower()
    }
    assert typed == set(), "a tone typed again outside rollbackkit/cards.py"
    live = tinted("live", "serving prod", "model@v1.0.0 now")  # the serving badge is the cards' badge
    assert live == badge("good", "rollbackkit-serving-now rollbackkit-now-live", text="serving prod",
                         title="model@v1.0.0 now")  # fmt: skip
    assert "rgba(26,127,55,0.18)" in live and "rollbackkit-serving-now" in live


def test_errors_show_inside_the_panel_never_as_a_traceback(logged: Path) -> None:
    panel = SchemaDiffPanel("churn@v1.0.0", "churn@v9.9.9", logged)
    assert "rollbackkit-error" in panel.title.value and "v9.9.9" in panel.title.value
    assert "Traceback" not in panel.title.value
    explorer = VersionExplorer(logged.parent / "not-a-repo")
    assert "rollbackkit-error" in explorer.table.value
    timeline = TimelinePanel("churn", "prod", logged)
    assert len(timeline.assignments) == 3
    runbook = RunbookPanel(logged, "churn", "prod")
    runbook.set(dry_run="maybe")  # a Checkbox refuses non-bools: stays a bool
    assert runbook.parameters["dry_run"] in (True, False)


def test_the_runbook_panel_runs_a_dry_run_with_progress(logged: Path) -> None:
    panel = RunbookPanel(logged, "churn", "prod")
    panel.set(reason="panel dry run", dry_run=True, to_version="v1.1.0")
    result = panel.run()
    assert result is not None and result.verdict == "dry-run"
    code_cells = [c for c in nbformat.read(str(result.notebook), 4).cells if c.cell_type == "code"]
    assert panel.progress.value == panel.progress.max == len(code_cells)  # progress counts the code cells
    assert "dry-run" in panel.result.value and result.notebook.name in panel.result.value


@pytest.mark.parametrize("notebook", ["explore", "console"])
def test_the_notebooks_execute_top_to_bottom(logged: Path, notebook: str) -> None:
    source = Path(__file__).parent.parent / "notebooks" / f"{notebook}.ipynb"
    out = logged.parent / f"{notebook}-out.ipynb"
    result = subprocess.run(
        [str(BIN / "papermill"), str(source), str(out), "-k", "rollbackkit", "-p", "repo", str(logged)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=source.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    executed = nbformat.read(str(out), 4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    widgets_shown = [
        o
        for c in executed.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets_shown
