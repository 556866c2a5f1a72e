"""DriftOverTimePanel: one column's drift per time window, per slice, and any window's histogram.

A thin face over :func:`rollbackkit.ops.drift_series.drift_over_time`: the log counts its rows per
slice, window and bin where it lives, so the figures draw a few hundred numbers whatever the
number of logged rows. The line shows the metric per window (one line per slice, the drift
gate's threshold dashed), the heatmap slice x time; clicking a cell (or a point of the line)
shows that window and slice's distribution against the reference below, as a histogram or an
ECDF on a value axis, like :class:`~rollbackkit.widgets.drift.DriftPanel` draws it (DriftPanel bins
raw rows at equal widths; here the bins are the log's, so the bars are densities: share of rows
per unit of the value, the same shape DriftPanel's equal-width shares have).

Cells with fewer rows than the series' ``min_rows`` are marked (hollow markers on the line,
cells masked (blank) in the heatmap, a note): their metric is mostly sampling noise. Times are UTC.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from rollbackkit.analysis.drift_series import DriftSeries
from rollbackkit.cards import ACCENT, FAIL, QUIET, number
from rollbackkit.errors import InvalidInput
from rollbackkit.widgets._common import MAX_POINTS, StaticFigure, error_html, guarded

if TYPE_CHECKING:
    import plotly.graph_objects as go

MAX_WINDOWS = 1000
"""Windows the panel asks for at most (more cells than the figures may send are merged: :func:`drawable`)."""

DETAIL_POINTS = 600
"""Points kept for the selected cell's histogram/ECDF (two traces of at most 252 bins)."""


class DriftOverTimePanel(widgets.VBox):
    """Drift of one logged column over time against the serving version's (or ``version``'s) reference.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        column: An input feature or the primary output (None: the primary output).
        metric: ``psi``, ``js``, ``wasserstein`` or ``tail``.
        windows: Equal time windows (1 to :data:`MAX_WINDOWS`; None: windows of about equal row
            counts, each with enough rows: :func:`~rollbackkit.ops.drift_series.drift_over_time`).
        by: A feature (or ``version``) to slice by.
        version: Measure this version's rows against ITS reference, with its gate's threshold (a
            canary's; None: the serving version's reference, every version's rows).
        live: Refresh every ``live`` seconds (a Live toggle; None: no refresh).

    Attributes:
        series: The :class:`~rollbackkit.analysis.drift_series.DriftSeries` shown (None after an error).
        line, heatmap: The two figures; ``detail`` the selected cell's histogram/ECDF below.
    """

    def __init__(
        self,
        repo: Any,
        name: str,
        env: str,
        column: str | None = None,
        *,
        metric: str = "psi",
        windows: int | None = None,
        by: str | None = None,
        version: str | None = None,
        live: float | None = None,
    ) -> None:
        import plotly.graph_objects as go

        self.repo, self.name, self.env, self.column, self.metric, self.by = repo, name, env, column, metric, by
        self.windows, self.version = windows, version
        self.series: DriftSeries | None = None
        self.selected: tuple[int, int] | None = None
        self.message, self.notes = widgets.HTML(), widgets.HTML()
        keep = f"{name}/{env}/{column}/{metric}/{by}/{version}"  # uirevision: a live refresh keeps the user's zoom
        self.line = go.FigureWidget(
            layout=go.Layout(height=280, margin={"t": 40, "b": 30}, hovermode="closest", uirevision=keep)
        )
        self.heatmap = go.FigureWidget(layout=go.Layout(height=240, margin={"t": 40, "b": 30}, uirevision=keep))
        self.view = widgets.ToggleButtons(options=["histogram", "ECDF"], value="histogram")
        self.view.observe(lambda _: self._draw_detail(), names="value")
        self.detail_plot = StaticFigure()  # redrawn whole on a click: no plotly.js in a saved notebook
        self.detail_title = widgets.HTML("<i>Click a cell of the heatmap (or a point of the line) to see it.</i>")
        self.detail = widgets.VBox([self.detail_title, self.view, self.detail_plot])
        parts: list[widgets.Widget] = [self.message, self.line, self.heatmap, self.notes, self.detail]
        self.live = None
        if live:
            from rollbackkit.widgets.live import LiveControl

            self.live = LiveControl(self._fetch, self._show, interval=live, start=True)
            parts.insert(0, self.live)
        super().__init__(parts)
        self.add_class("rollbackkit-drift-time")
        self.refresh()

    # ------------------------------------------------------------------------- data
    def _fetch(self) -> DriftSeries:
        from rollbackkit.ops.drift_series import drift_over_time

        if self.windows is not None and not 1 <= int(self.windows) <= MAX_WINDOWS:
            raise InvalidInput(f"windows={self.windows} is out of range.", f"Use 1 to {MAX_WINDOWS} windows.")
        return drift_over_time(
            self.repo, self.name, self.env, self.column, metric=self.metric, windows=self.windows, by=self.by,
            version=self.version,
        )  # fmt: skip

    def refresh(self) -> None:
        """Read the log again and redraw (an error is one line in the panel)."""
        self.message.value = ""
        result: list[DriftSeries] = []
        if guarded(self.message, lambda: result.append(self._fetch())):
            self._show(result[0])
        else:
            self.series = None
            self.notes.value = ""
            self._clear()

    @property
    def detail_figure(self) -> go.Figure:
        """The clicked cell's figure (a plain ``go.Figure``, shown in ``detail_plot``)."""
        return self.detail_plot.figure

    def _clear(self) -> None:
        for figure in (self.line, self.heatmap):
            figure.data = []
        self.detail_plot.clear()

    # ------------------------------------------------------------------------- figures
    def _show(self, series: DriftSeries) -> None:
        series = drawable(series)
        self.series = series
        self.message.value = ""
        title = f"{series.column}: {series.metric} per window vs {series.version}'s reference"
        self.notes.value = notes_html(series)
        with self.line.batch_update():
            self.line.data = []
            for trace in line_traces(series):
                self.line.add_trace(trace)
            self.line.layout.shapes, self.line.layout.annotations = _threshold(series.threshold)
            self.line.layout.title = title
            self.line.layout.yaxis.title = series.metric
            self.line.layout.xaxis.title = "time (UTC)"
        with self.heatmap.batch_update():
            self.heatmap.data = []
            self.heatmap.add_trace(heatmap_trace(series))
            self.heatmap.layout.xaxis.title = "time (UTC)"
            self.heatmap.layout.title = (
                f"{series.metric} by {series.by or 'slice'} and time, vs {series.compared_with} (click a cell)"
            )
        for trace in self.heatmap.data:
            trace.on_click(self._clicked)
        for trace in self.line.data:
            trace.on_click(self._clicked)
        if self.selected is None or self.selected[0] >= len(series.slices):
            self.selected = (0, _last_filled(series.n[0]))
        self._draw_detail()

    def _clicked(self, trace: Any, points: Any, _state: Any = None) -> None:
        """A click on the heatmap (row, column) or on a slice's line (its window)."""
        if self.series is None or not points.point_inds:
            return
        index = points.point_inds[0]
        if isinstance(index, list | tuple):
            self.select(self.series.slices[int(index[0])], int(index[1]))
        else:
            self.select(str(trace.name), int(index))

    def select(self, slice_: str, window: int) -> None:
        """Show one cell's distribution against the reference (what a click calls)."""
        if self.series is None:
            return
        if slice_ not in self.series.slices or not 0 <= window < len(self.series.windows):
            last = len(self.series.windows) - 1
            hint = f"Pick a slice of {self.series.slices} and a window 0-{last}."
            self.detail_title.value = error_html(InvalidInput(f"No cell {slice_!r} at window {window}.", hint))
            return
        self.selected = (self.series.slices.index(slice_), window)
        self._draw_detail()

    def _draw_detail(self) -> None:
        series = self.series
        if series is None or self.selected is None:
            return
        i, w = self.selected
        ecdf = self.view.value == "ECDF" and series.kind == "numeric"
        import plotly.graph_objects as go

        layout = go.Layout(height=280, margin={"t": 40, "b": 30}, barmode="overlay")
        figure = go.Figure(detail_traces(series, i, w, ecdf), layout=layout)
        unit = "ECDF" if ecdf else "share of rows per unit" if series.kind == "numeric" else "share of rows"
        figure.update_layout(yaxis_title=unit, xaxis_title=series.column)
        self.detail_plot.show(figure)
        low = " (low n: mostly noise)" if series.low_n[i, w] else ""
        self.detail_title.value = (
            f"<b>{html.escape(series.slices[i])}</b>, {window_text(*series.windows[w])}: "
            f"{html.escape(series.metric)} {number(float(series.values[i, w]))}, n {int(series.n[i, w])}{low}, "
            f"missing {int(series.missing[i, w])}; vs {series.compared_with}"
        )


def window_text(start: Any, end: Any) -> str:
    """``start to end`` in UTC, with seconds when the window is shorter than ten minutes."""
    short = (end - start).total_seconds() < 600
    clock = "%H:%M:%S" if short else "%H:%M"
    tail = f"{end:{clock}}" if start.date() == end.date() else f"{end:%Y-%m-%d {clock}}"
    return f"{start:%Y-%m-%d {clock}} to {tail} UTC"


def notes_html(series: DriftSeries) -> str:
    """The series' notes, what slices are compared with, the low-n rule and the rows of categories the
    reference never saw (each its own category, as a drift gate counts it), in one small line."""
    unseen = sum(rows for rows, _ in series.unseen.values())
    parts = [
        f"vs {series.compared_with}",
        f"hollow markers / blank cells: fewer than {series.min_rows} rows (mostly noise)",
        *(
            [f"{unseen:,} rows of categories the reference never saw, each its own, {_as_counted(series)}"]
            if unseen
            else []
        ),
        *series.notes,
    ]
    return f"<small>{html.escape('; '.join(parts))}</small>"


def _as_counted(series: DriftSeries) -> str:
    """``as its drift gate counts them`` when the version has one on the column, else ``as a drift gate would``."""
    return (
        "as its drift gate counts them" if series.threshold is not None else "as a drift gate would (none watches it)"
    )


def detail_traces(series: DriftSeries, slice_: int, window: int, ecdf: bool) -> list[Any]:
    """The selected cell against its reference: category shares, numeric densities, or ECDFs.

    Numeric bins are drawn over :meth:`~rollbackkit.analysis.drift_bins.Binning.spans`: values below
    the reference's p1 or above its p99 sit where their mean is (the log's per-bin sums), never
    piled into the reference's outer bin as a spike."""
    ref_sums = None if series.ref_sums is None else series.ref_sums[slice_]
    sums = None if series.sums is None else series.sums[slice_, window]
    sides = zip(
        ("reference", "window"), series.shares(slice_, window),
        (series.reference[slice_], series.counts[slice_, window]), (ref_sums, sums), strict=True,
    )  # fmt: skip
    return [detail_trace(series, name, y, ecdf, counts, bin_sums) for name, y, counts, bin_sums in sides]


def detail_trace(
    series: DriftSeries,
    name: str,
    shares: np.ndarray,
    ecdf: bool,
    counts: np.ndarray | None = None,
    sums: np.ndarray | None = None,
) -> Any:
    """One side of the selected cell (``counts`` and ``sums``: where its outer bins' values are)."""
    import plotly.graph_objects as go

    labels = series.binning.labels
    colour = QUIET if name == "reference" else ACCENT  # as DriftPanel and the schema diff draw the two sides
    if series.kind != "numeric":
        return go.Bar(x=labels, y=shares, name=name, opacity=0.55, marker_color=colour)
    lower, upper = series.binning.bounds if counts is None else series.binning.spans(counts, sums)
    if ecdf:
        return go.Scatter(
            x=upper, y=np.cumsum(shares), name=name, mode="lines", line_shape="hv", text=labels, line_color=colour
        )
    texts = [*labels]
    texts[0], texts[-1] = f"below the reference's p1 ({labels[0]})", f"above the reference's p99 ({labels[-1]})"
    means = (lower + upper) / 2
    return go.Bar(
        x=means, y=shares / (upper - lower), width=upper - lower, name=name, opacity=0.55, marker_color=colour,
        customdata=shares, text=[f"{t}, about {number(float(m))}" for t, m in zip(texts, means, strict=True)],
        hovertemplate="%{text}: %{customdata:.1%} of rows<extra>" + name + "</extra>", textposition="none",
    )  # fmt: skip


def drawable(series: DriftSeries) -> DriftSeries:
    """``series`` with few enough cells for the line and the heatmaps together to stay under
    :data:`~rollbackkit.widgets._common.MAX_POINTS` (adjacent windows merged, metrics recomputed)."""
    return series.coarser((MAX_POINTS - DETAIL_POINTS) // 2)


def window_edges(series: DriftSeries) -> list[Any]:
    """The windows' edges (``len(windows) + 1``: each start, then the last end): heatmap cells span them."""
    return [*(start for start, _ in series.windows), series.windows[-1][1]]


def window_centres(series: DriftSeries) -> list[Any]:
    """Each window's middle: where a line point stands for the whole window (its span in the hover)."""
    return [start + (end - start) / 2 for start, end in series.windows]


def line_traces(series: DriftSeries) -> list[Any]:
    """The metric per window at the window's centre, one line per slice (the window's span, n and
    missing in the hover; low-n points hollow)."""
    import plotly.graph_objects as go

    spans = [window_text(*w) for w in series.windows]
    return [
        go.Scatter(
            x=window_centres(series), y=series.values[i], name=name, mode="lines+markers", text=spans,
            marker={"symbol": np.where(series.low_n[i], "circle-open", "circle").tolist(), "size": 7},
            customdata=np.stack([series.n[i], series.missing[i]], axis=1),
            hovertemplate="%{text}<br>" + series.metric + " %{y:.4g}<br>n %{customdata[0]}, missing %{customdata[1]}",
        )
        for i, name in enumerate(series.slices)
    ]  # fmt: skip


def heatmap_trace(series: DriftSeries) -> Any:
    """Slice x time cells of the metric from 0, each spanning its window's start to end (x: the
    :func:`window_edges`; the window, n and missing in the hover); low-n cells masked (blank: their
    metric is mostly noise, their hover still says n)."""
    import plotly.graph_objects as go

    custom = np.stack([series.n, series.missing, series.values], axis=2)
    spans = [[window_text(*w) for w in series.windows]] * len(series.slices)
    return go.Heatmap(
        z=np.where(series.low_n, np.nan, series.values), x=window_edges(series), y=series.slices, text=spans,
        colorscale="Reds", zmin=0, colorbar={"title": series.metric}, customdata=custom, hoverongaps=True,
        hovertemplate="%{y}, %{text}<br>" + series.metric
        + " %{customdata[2]:.4g}<br>n %{customdata[0]}, missing %{customdata[1]}<extra></extra>",
    )  # fmt: skip


def drift_time_figure(series: DriftSeries) -> Any:
    """The line and the heatmap in one static figure (a report, the benchmark's point count)."""
    from plotly.subplots import make_subplots

    series = drawable(series)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for trace in line_traces(series):
        figure.add_trace(trace, row=1, col=1)
    figure.add_trace(heatmap_trace(series), row=2, col=1)
    figure.update_layout(
        title=f"{series.column}: {series.metric} per window vs {series.compared_with} (UTC)", height=520
    )
    return figure


def _threshold(value: float | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The drift gate's threshold as a dashed line across the plot, labelled ``gate`` (no points)."""
    if value is None:
        return [], []
    line = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value}
    label = {"xref": "paper", "x": 1, "y": value, "text": "gate", "showarrow": False, "yanchor": "bottom"}
    return [{**line, "line": {"dash": "dash", "color": FAIL}}], [label]


def _last_filled(n: np.ndarray) -> int:
    """The newest window with rows (the last one when none has)."""
    filled = np.flatnonzero(n > 0)
    return int(filled[-1]) if filled.size else len(n) - 1
