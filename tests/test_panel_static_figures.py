"""Figures that never update live are plain plotly figures in an Output widget, not FigureWidgets.

A FigureWidget saves about 5 MB of plotly.js in a notebook's widget state; a figure shown as
plotly's JSON output saves its data only, and JupyterLab's and Voila's plotly renderer draw it
(checked in a browser: see CHANGELOG). The schema diff's distributions, DriftPanel's histogram or
ECDF and the drift-over-time panel's clicked cell are such figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from ipywidgets.embed import dependency_state

from rollbackkit.widgets import DriftOverTimePanel, DriftPanel, SchemaDiffPanel
from rollbackkit.widgets._common import PLOTLY_MIME, StaticFigure

SMALL = 300_000
"""Bytes of saved widget state a panel without a live figure stays under (a FigureWidget alone: ~5 MB)."""


def saved_bytes(widget: object) -> int:
    """The widget state a saved notebook stores for ``widget`` and its children."""
    return len(json.dumps(dependency_state(widget)))


def test_a_drift_panel_saves_its_figure_as_data_not_plotly_js() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"alcohol": rng.normal(13, 1, 4000), "cultivar": rng.choice(["a", "b"], 4000)})
    current = pd.DataFrame({"alcohol": rng.normal(13.6, 1, 4000), "cultivar": rng.choice(["a", "b", "c"], 4000)})
    panel = DriftPanel(reference, current, column="alcohol")
    assert isinstance(panel.plot, StaticFigure) and saved_bytes(panel) < SMALL
    (shown,) = panel.plot.outputs
    drawn = shown["data"][PLOTLY_MIME]
    assert [t["name"] for t in drawn["data"]] == ["reference", "current"] and drawn["data"][0]["type"] == "bar"
    assert drawn["layout"]["title"]["text"] == "alcohol: share of rows"
    panel.view.value = "ECDF"  # redrawn whole: lines now, the same names
    assert [t.type for t in panel.figure.data] == ["scatter", "scatter"]
    assert abs(panel.figure.data[1].y[-1] - 1.0) < 1e-9 and "y" in panel.plot.outputs[0]["data"][PLOTLY_MIME]["data"][1]
    panel.column.value = "cultivar"
    assert sorted(panel.figure.data[1].x) == ["a", "b", "c"]


def test_the_schema_diff_and_the_drift_detail_hold_no_figure_widget(tmp_path: Path) -> None:
    diff = SchemaDiffPanel()
    assert isinstance(diff.plot, StaticFigure) and saved_bytes(diff) < SMALL
    panel = DriftOverTimePanel(tmp_path, "churn", "prod")  # no project: one error line, the figures built
    assert "rollbackkit-error" in panel.message.value
    assert isinstance(panel.detail_plot, StaticFigure) and saved_bytes(panel.detail) < SMALL
    assert panel.detail_figure.data == ()
