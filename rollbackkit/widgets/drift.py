"""DriftPanel: reference vs current distributions, histogram or ECDF, per slice, with metrics.

Large inputs are binned in numpy before anything reaches plotly: each view ships at most
``bins`` points per side to the browser, whatever the number of rows. The ECDF is the
cumulative sum of a fine histogram (``ECDF_BINS`` bins), so it needs no sort. Metrics come
from :func:`rollbackkit.analysis.drift.drift` and are cached per (column, slice), so toggling the
view or coming back to a column costs only the binning.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from rollbackkit.cards import ACCENT, QUIET, number
from rollbackkit.errors import InvalidInput, RollbackkitError
from rollbackkit.widgets._common import StaticFigure, error_html, guarded, table

ALL = "(all rows)"
ECDF_BINS = 512


def _frame(data: Any, name: str, what: str) -> pd.DataFrame:
    """A frame from a DataFrame, Series, array, or a CSV/Parquet path (as ``drift`` takes them)."""
    from pathlib import Path

    from rollbackkit.bundle.frames import read_frame

    if isinstance(data, str | Path):
        return read_frame(data, what)
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(data.name if data.name is not None else name)
    return pd.DataFrame({name: np.asarray(data)})


def _choose(shared: list[str], current: pd.DataFrame, column: str | None, by: str | None) -> str | None:
    """The column to show first; a named column that cannot be shown is an error, never swapped."""
    if by is not None and by not in current.columns:
        raise InvalidInput(
            f"The slice column by={by!r} is not in the current data.",
            f"Choose one of: {', '.join(map(str, current.columns[:10]))}.",
        )
    if column is not None and column == by:
        raise InvalidInput(
            f"column={column!r} is also the slice column (by).", "Compare another column, or slice by another one."
        )
    if column is not None and column not in shared:
        raise InvalidInput(
            f"Column {column!r} is not in both the reference and the current data.",
            f"Choose one of: {', '.join(shared[:10])}." if shared else "Pass data that share a column.",
        )
    return column if column is not None else (shared[0] if shared else None)


class DriftPanel(widgets.VBox):
    """Overlaid reference and current distributions of one column, and its drift metrics.

    A path that cannot be read, an unknown ``column`` or ``by``, or ``column == by`` shows
    one readable line in the panel (also kept as :attr:`error`) and no figure; another
    column is never shown in its place.

    Args:
        reference: Reference values: a DataFrame, Series, array, or a CSV/Parquet path.
        current: Current values, same kinds.
        column: The column shown first (default: the first shared column).
        by: A column of ``current`` (and ``reference`` when present) to slice by.
        bins: Histogram bins.

    Attributes:
        figure: The ``go.Figure`` shown (in ``plot``, a :class:`~rollbackkit.widgets._common.StaticFigure`:
            redrawn whole when the column, slice or view changes; no plotly.js in a saved notebook).
    """

    def __init__(
        self, reference: Any, current: Any, column: str | None = None, by: str | None = None, bins: int = 40
    ) -> None:
        self.error: RollbackkitError | None = None
        self.by = by
        self.bins = bins
        self._metrics: dict[tuple[str, str], dict[str, Any]] = {}
        first: str | None = None
        try:
            self.reference = _frame(reference, "value", "reference data")
            self.current = _frame(current, "value", "current data")
            shared = [str(c) for c in self.current.columns if c in self.reference.columns and c != by]
            first = _choose(shared, self.current, column, by)
        except RollbackkitError as exc:
            self.error = exc
            self.reference = self.reference if hasattr(self, "reference") else pd.DataFrame()
            self.current = self.current if hasattr(self, "current") else pd.DataFrame()
            shared = [str(c) for c in self.current.columns if c in self.reference.columns and c != by]
        self.message = widgets.HTML()
        self.column = widgets.Dropdown(options=shared, value=first)
        self.column.description = "column"
        slices = [ALL] + (
            sorted(map(str, self.current[by].dropna().unique())) if by is not None and by in self.current else []
        )
        self.slice = widgets.Dropdown(options=slices, value=ALL, description="slice")
        self.view = widgets.ToggleButtons(options=["histogram", "ECDF"], value="histogram")
        self.plot = StaticFigure()
        self.metrics = widgets.HTML()
        self.column.observe(lambda _: self._picked(), names="value")
        for control in (self.slice, self.view):
            control.observe(lambda _: self.refresh(), names="value")
        super().__init__([widgets.HBox([self.column, self.slice, self.view]), self.message, self.plot, self.metrics])
        self.add_class("rollbackkit-drift")
        self.refresh()

    @property
    def figure(self) -> Any:
        """The ``go.Figure`` shown now (its traces: reference, current)."""
        return self.plot.figure

    # ------------------------------------------------------------------------- data
    def _values(self, frame: pd.DataFrame, column: str, part: str) -> pd.Series:
        if part != ALL and self.by in frame.columns:
            frame = frame[frame[self.by].astype(str) == part]
        return frame[column]

    def _picked(self) -> None:
        """A column picked in the dropdown replaces a column that could not be shown."""
        if self.column.value is not None:
            self.error = None
        self.refresh()

    def refresh(self) -> None:
        """Re-bin and re-draw the current column, slice and view."""
        self.message.value = ""
        if self.error is not None:
            self.message.value = error_html(self.error)
            return
        if self.column.value is None:
            self.message.value = "No column is shared by the reference and the current data."
            return
        guarded(self.message, self._draw)

    def _draw(self) -> None:
        column, part = str(self.column.value), str(self.slice.value)
        ref, cur = self._values(self.reference, column, part), self._values(self.current, column, part)
        numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        x, ref_y, cur_y = self._numeric(ref, cur) if numeric else self._categorical(ref, cur)
        ecdf = self.view.value == "ECDF" and numeric
        kind = "ECDF" if ecdf else "share of rows"
        self.plot.show(
            _figure(x, ref_y, cur_y, ecdf, f"{column}{'' if part == ALL else f' [{self.by}={part}]'}: {kind}")
        )
        self._show_metrics(column, part, ref, cur)

    def _numeric(self, ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from rollbackkit.analysis.histogram import shared_histogram

        ecdf = self.view.value == "ECDF"
        samples = [s.to_numpy(dtype="float64", na_value=np.nan) for s in (ref, cur)]
        histogram = shared_histogram(samples, ECDF_BINS if ecdf else self.bins)
        if histogram is None:
            return np.array([]), np.array([]), np.array([])
        edges = histogram.edges
        shares = [np.cumsum(counts) if ecdf else counts for counts in histogram.shares]
        centres = edges[1:] if ecdf else (edges[:-1] + edges[1:]) / 2
        return centres, shares[0], shares[1]

    def _categorical(self, ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r, c = ref.astype(str).value_counts(normalize=True), cur.astype(str).value_counts(normalize=True)
        keys = sorted(set(r.index) | set(c.index))[:200]
        return np.array(keys), r.reindex(keys, fill_value=0).to_numpy(), c.reindex(keys, fill_value=0).to_numpy()

    def _show_metrics(self, column: str, part: str, ref: pd.Series, cur: pd.Series) -> None:
        from rollbackkit.analysis.drift import drift

        key = (column, part)
        if key not in self._metrics:
            self._metrics[key] = drift(ref, cur, column).to_dict()
        m = self._metrics[key]
        wanted = (
            "n_ref",
            "n_cur",
            "psi",
            "js",
            "ks",
            "ks_pvalue",
            "wasserstein",
            "wasserstein_norm",
            "new_category_share",
        )
        rows = [(k, _fmt(m[k])) for k in wanted if k in m]
        rows += [(f"{q} (ref, cur)", f"{_fmt(v[0])}, {_fmt(v[1])}") for q, v in (m.get("quantiles") or {}).items()]
        rows += [(f"tail {k}", _fmt(v)) for k, v in (m.get("tail_share") or {}).items()]
        self.metrics.value = f"<b>{html.escape(column)}</b>" + table(["metric", "value"], rows, "rollbackkit-metrics")

    @property
    def metric_values(self) -> dict[str, Any]:
        """The metrics shown now (for code that reads the panel)."""
        return self._metrics.get((str(self.column.value), str(self.slice.value)), {})


def _figure(x: np.ndarray, ref_y: np.ndarray, cur_y: np.ndarray, ecdf: bool, title: str) -> Any:
    """Reference and current overlaid: bars (shares per bin or category), or ECDF lines."""
    import plotly.graph_objects as go

    def trace(name: str, y: np.ndarray, colour: str) -> Any:
        if ecdf:
            return go.Scatter(x=x, y=y, name=name, mode="lines", line={"color": colour})
        return go.Bar(x=x, y=y, name=name, opacity=0.55, marker={"color": colour})

    layout = go.Layout(barmode="overlay", height=340, margin={"t": 40, "b": 30}, title=title)
    figure = go.Figure([trace("reference", ref_y, QUIET), trace("current", cur_y, ACCENT)], layout=layout)
    figure.update_layout(yaxis_title="ECDF" if ecdf else "share of rows")
    return figure


def _fmt(value: Any) -> str:
    return number(value)  # the cards' one number format
