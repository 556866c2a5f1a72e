"""GatesOverTimePanel: each gate's value against its bound at every watchdog evaluation.

One small multiple per gate (shared time axis): the observed value (line), its bound
(dashed), failures (red x), labelled rows on a second axis where labels come late, and the
rollbacks as vertical markers (the reason in hover). The data is
:func:`rollbackkit.ops.gate_history.gate_history`; a long history is thinned before plotting
(:meth:`GateHistory.thinned`: every failure and decision change kept), so a figure sends at
most :data:`~rollbackkit.widgets._common.MAX_POINTS` points.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from rollbackkit.analysis.diffsections import bound_words
from rollbackkit.cards import ACCENT, FAIL, MUTED, SECOND, esc, number
from rollbackkit.widgets._common import MAX_POINTS, RegistryLike, badge, guarded

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rollbackkit.ops.gate_history import GateHistory, GateSeries

FAILED = FAIL
VALUE = ACCENT
BOUND = MUTED
LABELS = SECOND
PER_EVALUATION = 6
"""Points one gate can send per evaluation: value (and its low/high band), bound, a failure, labelled rows."""
STRIP = 44
"""Pixels of the rollbacks' strip above the gates' plots (only when there is a rollback)."""


def gates_figure(history: GateHistory) -> go.Figure:
    """Small multiples of ``history``'s gates over time (see the module docstring), <= MAX_POINTS points."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    gates = history.gates
    if not gates:
        figure = go.Figure()
        figure.update_layout(title=f"No gate evaluations recorded for {history.name} in {history.env}", height=200)
        return figure
    budget = max(2, (MAX_POINTS - 2 * len(history.rollbacks)) // (PER_EVALUATION * len(gates)))
    shown = history.thinned(budget)
    series = shown.series
    strip = 1 if shown.rollbacks else 0  # the rollbacks on their own strip above the gates
    height = max(260, 190 * len(gates)) + STRIP * strip
    figure = make_subplots(
        rows=len(gates) + strip, cols=1, shared_xaxes=True, vertical_spacing=min(0.08, 0.3 / len(gates)),
        subplot_titles=["rollbacks"] * strip + [_title(series[g]) for g in gates],
        specs=[[{"secondary_y": True}] for _ in range(len(gates) + strip)],
        row_heights=[STRIP / height] * strip + [(1 - STRIP * strip / height) / len(gates)] * len(gates),
    )  # fmt: skip
    for row, gate in enumerate(gates, start=1 + strip):
        _gate_traces(figure, series[gate], row)
    _rollbacks(figure, shown, len(gates))
    figure.update_layout(
        height=height, margin={"l": 50, "r": 50, "t": 40, "b": 30}, hovermode="closest",
        legend={"orientation": "h", "y": -0.06}, template="plotly_white",
        uirevision=f"{history.name}/{history.env}",  # a live refresh keeps the user's zoom and hidden traces
    )  # fmt: skip
    return figure


def _title(s: GateSeries) -> str:
    failed = f", {s.failures} failed" if s.failures else ""
    return f"{esc(s.gate)} ({esc(s.kind)}{failed})"


def _gate_traces(figure: go.Figure, s: GateSeries, row: int) -> None:
    import plotly.graph_objects as go

    times = list(s.times)
    hover = [_hover(s, i) for i in range(len(times))]
    first = row == 1
    figure.add_trace(
        go.Scatter(x=times, y=list(s.values), mode="lines+markers", name="value", legendgroup="value",
                   showlegend=first, line={"color": VALUE}, marker={"size": 4}, hovertext=hover, hoverinfo="text",
                   error_y=_band(s)),
        row=row, col=1,
    )  # fmt: skip
    if any(b is not None for b in s.bounds):
        figure.add_trace(
            go.Scatter(x=times, y=list(s.bounds), mode="lines", name="bound", legendgroup="bound", showlegend=first,
                       line={"color": BOUND, "dash": "dash", "shape": "hv"}, hoverinfo="skip"),
            row=row, col=1,
        )  # fmt: skip
    failed = [i for i, status in enumerate(s.statuses) if status == "fail"]
    if failed:
        figure.add_trace(
            go.Scatter(x=[times[i] for i in failed], y=[_at(s, i) for i in failed], mode="markers", name="failed",
                       legendgroup="failed", showlegend=True, marker={"symbol": "x", "size": 10, "color": FAILED},
                       hovertext=[hover[i] for i in failed], hoverinfo="text"),
            row=row, col=1,
        )  # fmt: skip
    if s.has_labels:
        figure.add_trace(
            go.Scatter(x=times, y=list(s.labelled), mode="lines", name="labelled rows", legendgroup="labelled",
                       showlegend=True, line={"color": LABELS, "dash": "dot", "shape": "hv"}, opacity=0.7,
                       hovertext=[f"{s.gate}: {lab} labelled, {aw} awaiting labels"
                                  for lab, aw in zip(s.labelled, s.awaiting, strict=True)], hoverinfo="text"),
            row=row, col=1, secondary_y=True,
        )  # fmt: skip
        top = max((v for v in s.labelled if v is not None), default=0)
        figure.update_yaxes(title_text="labelled", row=row, col=1, secondary_y=True, rangemode="tozero",
                            tick0=0, dtick=whole_step(top), tickformat=",d")  # fmt: skip


def whole_step(top: float, ticks: int = 5) -> int:
    """A tick step for counts up to ``top``: a whole 1, 2 or 5 times a power of ten, about ``ticks`` ticks."""
    step = 1
    while step * ticks < top:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def _band(s: GateSeries) -> dict[str, Any] | None:
    """Error bars from each thinned record's lowest to highest value (None when no record merged any)."""
    if all(g.low is None for g in s.seen):
        return None
    up = [None if g.high is None or g.value is None else g.high - g.value for g in s.seen]
    down = [None if g.low is None or g.value is None else g.value - g.low for g in s.seen]
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down, "color": VALUE, "thickness": 1,
            "width": 0}  # fmt: skip


def _at(s: GateSeries, i: int) -> float | None:
    """Where a failure's marker sits: its value, else its bound (a failure without a value)."""
    return s.values[i] if s.values[i] is not None else s.bounds[i]


def _hover(s: GateSeries, i: int) -> str:
    """One evaluation of one gate in words (the hover text; every value escaped, bounds by ``bound_words``)."""
    seen = s.seen[i]
    value = "no value" if seen.value is None else number(seen.value)
    said, rest = bound_words(seen.threshold)
    bounds = ", ".join([*([said] if said else []), *(f"{k} {number(v)}" for k, v in rest.items() if _numeric(v))])
    parts = [f"{s.times[i]:%Y-%m-%d %H:%M:%S} {esc(s.versions[i])}", f"{esc(s.gate)}: {esc(seen.status)}, {value}"]
    if seen.low is not None and seen.high is not None:
        parts.append(f"from {number(seen.low)} to {number(seen.high)} over {s.merged[i]} evaluations")
    parts += [f"bounds: {esc(bounds)}"] if bounds else []
    parts += [f"{seen.n} rows"] if seen.n is not None else []
    if seen.labelled is not None:
        parts.append(f"{seen.labelled} of {seen.eligible} eligible rows labelled, {seen.awaiting} awaiting labels")
    parts += [f"failing {esc(seen.failing)}"] if seen.failing else []
    parts += [html.escape(seen.reason)] if seen.reason else []
    parts += ["worst slice: " + html.escape(", ".join(f"{k}={v}" for k, v in seen.slice.items()))] if seen.slice else []
    return "<br>".join(parts)


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rollbacks(figure: go.Figure, history: GateHistory, rows: int) -> None:
    """A vertical line per rollback through every gate's plot, and its marker (the reason in hover) on
    the rollbacks' own strip above them (row 1: never read as a gate's value)."""
    import plotly.graph_objects as go

    if not history.rollbacks:
        return
    for mark in history.rollbacks:
        for row in range(2, rows + 2):
            figure.add_vline(x=mark.time, line={"color": FAILED, "width": 1.5, "dash": "dot"}, row=row, col=1)
    figure.add_trace(
        go.Scatter(
            x=[m.time for m in history.rollbacks], y=[0.5] * len(history.rollbacks), mode="markers", name="rollback",
            marker={"symbol": "triangle-down", "size": 12, "color": FAILED},
            hovertext=[_rollback_words(m) for m in history.rollbacks], hoverinfo="text",
        ),
        row=1, col=1,
    )  # fmt: skip
    figure.update_yaxes(visible=False, range=[0, 1], fixedrange=True, row=1, col=1)


def _rollback_words(mark: Any) -> str:
    who = "automatic rollback" if mark.automatic else "rollback"
    moved = f"{esc(mark.from_version)} -> {esc(mark.version)}" if mark.from_version else f"to {esc(mark.version)}"
    return f"{mark.time:%Y-%m-%d %H:%M:%S} {who} {moved}<br>{html.escape(mark.reason[:300])}"


def summary_html(history: GateHistory) -> str:
    """The panel's header: what was read, the latest decision, failures and rollbacks."""
    name, env = html.escape(history.name), html.escape(history.env)
    if history.empty:
        return (
            f"<div class='rollbackkit-empty'>No gate evaluations recorded for {name} in {env} yet: "
            "the watchdog of a running server records one at each check.</div>"
        )
    last = history.evaluations[-1]
    count = sum(e.evaluations for e in history.evaluations)
    failed = sum(s.failures for s in history.series.values())
    span = f"{_when(history.evaluations[0].time)} to {_when(last.time)}"
    return (
        f"<div><b>{name}</b> in <b>{env}</b>: {count} evaluations ({len(history.evaluations)} kept), {span}; "
        f"latest {badge(last.decision)} on {html.escape(last.version)} ({html.escape(last.role)}); "
        f"{failed} gate failures; {len(history.rollbacks)} rollbacks. "
        + ("<b>Thinned</b>: some evaluations left out (narrow since/until for all). " if history.truncated else "")
        + f"<span style='color:{MUTED}'>read from {html.escape(history.where)}</span></div>"
    )


def _root(repo: RegistryLike) -> Any:
    """A path inside the project, from a registry or a path."""
    from rollbackkit.registry.store import Registry

    return repo.root if isinstance(repo, Registry) else repo


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}"


class GatesOverTimePanel(widgets.VBox):
    """Gates over time for NAME in ENV: the header, the small multiples, and one line on any error.

    Args:
        repo: A registry or any path inside the project.
        name: The bundle name.
        env: The environment.
        since, until, version: Narrow the history (see :func:`~rollbackkit.ops.gate_history.gate_history`).
        server: The server to ask (default: the running one, else the log file or the store).
        live: Refresh every ``live`` seconds (a :class:`~rollbackkit.widgets.live.LiveControl`); None: once.
    """

    def __init__(
        self,
        repo: RegistryLike,
        name: str,
        env: str,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        version: str | None = None,
        server: str | None = None,
        live: float | None = None,
    ) -> None:
        import plotly.graph_objects as go

        self.repo, self.name, self.env = repo, name, env
        self._query: dict[str, Any] = {"since": since, "until": until, "version": version, "server": server}
        self.history: GateHistory | None = None
        self.header = widgets.HTML()
        self.message = widgets.HTML()
        self.figure = go.FigureWidget()
        self.live: Any = None
        super().__init__([self.header, self.message, self.figure])
        self.add_class("rollbackkit-gates-time")
        if live is not None:
            from rollbackkit.widgets.live import LiveControl

            self.live = LiveControl(self._fetch, self._show, interval=live, start=False)
        self.refresh()
        if self.live is not None:
            self.live.play()

    def _fetch(self) -> GateHistory:
        from rollbackkit.ops.gate_history import gate_history

        return gate_history(_root(self.repo), self.name, self.env, **self._query)

    def _show(self, history: GateHistory) -> None:
        self.history = history
        self.header.value = summary_html(history)
        self.message.value = ""
        drawn = gates_figure(history)
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.layout = drawn.layout
            self.figure.add_traces(list(drawn.data))
        self._parts(figure=not history.empty)

    def _parts(self, *, figure: bool) -> None:
        """The panel's children: the figure only when there is one to show."""
        shown = [self.header, self.message, *([self.figure] if figure else [])]
        self.children = [self.live, *shown] if self.live is not None else shown

    def refresh(self) -> None:
        """Read the history again and redraw (an error is one line in the panel)."""

        def load() -> None:
            self._show(self._fetch())

        if not guarded(self.message, load):
            self.header.value = ""
            self.figure.data = ()
            self._parts(figure=False)

    @property
    def error(self) -> str:
        """The error line shown, if any (empty when the panel shows a history)."""
        return str(self.message.value)
