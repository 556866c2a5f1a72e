"""RollbackPreviewPanel: what a rollback would change, before it happens.

A thin face over :func:`rollbackkit.ops.preview.preview_rollback`: the share of decisions that
flip (headline), per slice bars of flip share and score delta (:func:`preview_figure`, one bar
per slice: a few dozen points whatever the sample), the preflight verdict and adaptation, the
most frequent flips and the rows a backfill would rewrite. Bad input is one line in the panel.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from rollbackkit.bundle.card_views import adaptation_said
from rollbackkit.cards import ACCENT, FAIL, clock, number
from rollbackkit.widgets._common import Safe, badge, guarded, table

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rollbackkit.ops.preview import RollbackPreview

VERDICT_STATUS = {"compatible": "pass", "adaptable": "warn", "incompatible": "fail"}


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _delta_title(p: RollbackPreview) -> str:
    if p.score is None:
        return "no score delta"
    return f"{p.score}: {p.to_version} - {p.from_version}"


def preview_figure(p: RollbackPreview) -> go.Figure:
    """Per slice: the share of decisions that flip, and the mean score delta with its p5-p95 range.

    One bar per slice (at most :data:`rollbackkit.analysis.preview.MAX_SLICES` + 2): the
    figure's size does not grow with the sample. Reasons and counts are in the hover text.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [s.slice for s in p.slices]
    scored = bool(p.slices) and p.slices[0].mean is not None  # no score both output: no empty right plot
    figure = make_subplots(
        rows=1,
        cols=2 if scored else 1,
        subplot_titles=("decisions that flip", _delta_title(p)) if scored else ("decisions that flip",),
        horizontal_spacing=0.12,
    )
    if not p.slices:
        figure.add_annotation(text=html.escape(p.refused or p.note or "nothing scored"), showarrow=False, x=0.5, y=0.5)
        return figure
    hover = [f"{s.slice}: {s.flips if s.flips is not None else '-'} of {s.n} rows" for s in p.slices]
    if p.flip_share is None:
        figure.add_annotation(
            text="no decisions compared (see above)", showarrow=False, xref="x domain", yref="y domain", x=0.5, y=0.5
        )
    else:
        shares = [100 * (s.flip_share or 0.0) for s in p.slices]
        figure.add_trace(
            go.Bar(x=names, y=shares, name="flip share (%)", hovertext=hover, marker_color=FAIL), row=1, col=1
        )
        figure.update_yaxes(title_text="% of rows", rangemode="tozero", row=1, col=1)
    if not scored:
        figure.add_annotation(
            text="no score both versions output", showarrow=False, xref="paper", yref="paper", x=1, y=1.12,
            xanchor="right", font={"size": 11}, opacity=0.75,
        )  # fmt: skip
    else:
        means = [s.mean for s in p.slices]
        above = [None if s.mean is None or s.p95 is None else s.p95 - s.mean for s in p.slices]
        below = [None if s.mean is None or s.p5 is None else s.mean - s.p5 for s in p.slices]
        figure.add_trace(
            go.Bar(
                x=names,
                y=means,
                name="mean delta (p5-p95)",
                error_y={"type": "data", "array": above, "arrayminus": below, "symmetric": False},
                hovertext=[
                    f"{s.slice}: mean {_signed(s.mean)}, p5 {_signed(s.p5)}, p95 {_signed(s.p95)}" for s in p.slices
                ]
                if all(s.mean is not None for s in p.slices)
                else hover,
                marker_color=ACCENT,
            ),
            row=1,
            col=2,
        )
    figure.update_layout(height=320, margin={"t": 40, "b": 40, "l": 40, "r": 10}, showlegend=False, bargap=0.3)
    figure.update_xaxes(tickangle=-30, automargin=True)
    return figure


def _headline(p: RollbackPreview) -> list[str]:
    """The flip share of the rows the target can score and the rows it would refuse; one line per
    leaving version (flip share, rows, time range, traffic share); then the total."""
    from rollbackkit.analysis.preview import scored_words

    tense = "rolled back" if p.done else "would roll back"
    flip = "flipped" if p.done else "flip"
    sources = " and ".join(f"<b>{html.escape(v)}</b>" for v in p.from_versions)
    lines = [
        f"<b>{html.escape(p.name)}</b> in <b>{html.escape(p.env)}</b> {tense} from "
        f"{sources} to <b>{html.escape(p.to_version)}</b>: "
        f"<span class='rollbackkit-flip-share' style='font-size:1.3em'><b>{_percent(p.flip_share)}</b></span> "
        + html.escape(scored_words(p.n, p.refused_rows, done=p.done, why=p.refused_why))
        + (f" (decision: {html.escape(p.score or p.primary)} &gt; {p.threshold:g})" if p.threshold is not None else "")
        + "."
    ]
    for part in p.parts:
        share = "" if part.traffic is None else f"'s {part.traffic:g}% of traffic"
        if part.role == "replaced" and part.traffic is not None:
            share = f" ({part.traffic:g}% of traffic before the rollback)"
        span = f"{clock(part.first, day=True)} to {clock(part.last)}" if part.first and part.last else ""
        when = f", {html.escape(span)}" if span else ""
        refused = f"; {part.refused_rows:,} refused" if part.refused_rows else ""
        lines.append(
            f"{_percent(part.flip_share)} of the {part.role} {html.escape(part.version)}{share} "
            f"(its latest {part.n} scoreable rows{refused}{when})"
        )
    if len(p.parts) > 1 or (p.parts and p.parts[0].traffic not in (None, 100.0)):
        lines.append(f"&asymp; <b>{_percent(p.total)}</b> of all {html.escape(p.env)} scoreable decisions {flip}.")
    return lines


def _preflight_line(p: RollbackPreview) -> str:
    """The verdict and the adaptation, both of the largest column set (the rows the preflight checked)."""
    main = p.parts[0].groups[0] if p.parts and p.parts[0].groups else None
    applied = adaptation_said(p.adaptation, names=8)
    if main is not None and main.refused is not None:
        then = "Refused."
    else:
        then = f"Scored after the adaptation that {html.escape(applied)}." if applied != "none" else "Scored as logged."
    status = "skipped" if p.serves else VERDICT_STATUS.get(p.verdict, p.verdict)
    return f"Preflight of {html.escape(p.to_version)}: {badge(status)} {html.escape(p.preflight_said())}. {then}"


def summary_html(p: RollbackPreview) -> str:
    """The headline (per leaving version and traffic-weighted), verdict, adaptation applied, column
    sets, flips, backfill rows."""
    from rollbackkit.ops.preview_groups import group_lines

    lines = _headline(p)  # a regressor without a threshold: its note (ops.preview.NO_THRESHOLD) says so
    if p.preflight is not None:
        lines.append(_preflight_line(p))
    for text in (p.refused, p.note):
        if text:
            style = f"rollbackkit-error' style='color:{FAIL}" if text == p.refused else "rollbackkit-note"
            lines.append(f"<span class='{style}'>{html.escape(text)}</span>")
    for part in p.parts:
        if len(part.groups) > 1:  # rows sent under different column sets: each checked and scored apart
            for said, refused in group_lines(part.groups):
                style = f"rollbackkit-error' style='color:{FAIL}" if refused else "rollbackkit-group"
                lines.append(f"<span class='{style}'>{html.escape(part.version)}: {html.escape(said)}</span>")
    for part in p.parts:
        if part.rows is not None:
            lines.append(
                f"A backfill would rewrite <b>{part.rows.backfill}</b> of the {part.rows.rows} rows "
                f"{html.escape(part.version)} wrote in {html.escape(p.env)} over all its deployments "
                f"(this preview scored its latest {part.n + part.refused_rows:,})."
            )
    unloaded = "" if p.loaded else " (its bundle was not loaded here)"
    lines.append(f"<small>Scored with the {html.escape(p.where)}{unloaded}; nothing was written.</small>")
    parts = [f"<div>{line}</div>" for line in lines]
    if p.changes:
        rows = [(c.before, c.after, c.rows) for c in p.changes]
        parts.append(table([f"{p.from_version} said", f"{p.to_version} says", "rows"], rows, "rollbackkit-flips"))
    return "".join(parts)


class RollbackPreviewPanel(widgets.VBox):
    """The rollback preview of ``name`` in ``env``: headline, per-slice figure, verdict, backfill.

    Takes :func:`~rollbackkit.ops.preview.preview_rollback`'s arguments (the same defaults).

    Attributes:
        preview: The :class:`~rollbackkit.ops.preview.RollbackPreview` (None after an error).
        figure: :func:`preview_figure` of it, a plain ``go.Figure`` (None after an error): shown as
            plotly's mime bundle in an ``Output`` (:attr:`plot`), so a saved notebook keeps the
            figure's data, not plotly.js in a FigureWidget's state.
        plot: The ``Output`` the figure is drawn in.
        summary: The headline, verdict and backfill HTML (or the error line).
    """

    def __init__(
        self,
        repo: str | Path,
        name: str,
        env: str,
        *,
        to_version: str | None = None,
        sample: int | None = None,
        by: str | None = None,
        threshold: float | None = None,
        server: str | None = None,
    ) -> None:
        self._args: dict[str, Any] = {
            "to_version": to_version,
            **({"sample": sample} if sample is not None else {}),
            "by": by,
            "threshold": threshold,
            "server": server,
        }
        self._where = (Path(repo), name, env)
        self.preview: RollbackPreview | None = None
        self.figure: Any = None
        self.summary = widgets.HTML()
        self.plot = widgets.Output()
        super().__init__([self.summary])
        self.add_class("rollbackkit-preview")
        self.refresh()

    def refresh(self) -> None:
        """Preview again (the latest logged rows)."""
        self.preview, self.figure = None, None
        self.children = [self.summary]
        guarded(self.summary, self._build)

    def _build(self) -> None:
        from rollbackkit.ops.preview import preview_rollback

        repo, name, env = self._where
        self.preview = preview_rollback(repo, name, env, **self._args)
        self.summary.value = Safe(summary_html(self.preview))
        self.figure = preview_figure(self.preview)
        self.plot.outputs = (figure_output(self.figure),)
        self.children = [self.summary, self.plot]


def figure_output(figure: go.Figure) -> dict[str, Any]:
    """``figure`` as a display output for an ``Output`` widget: plotly's mime bundle (drawn by the
    jupyterlab-plotly renderer; a few KB in a saved notebook) and a plain-text line."""
    import plotly.io as pio

    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    title = "; ".join(str(t.name) for t in figure.data if t.name) or "no bars"
    return {
        "output_type": "display_data",
        "data": {**bundle, "text/plain": f"<rollback preview: {title}>"},
        "metadata": {},
    }


def _signed(value: float | None) -> str:
    """A delta by the cards' one number format, its sign always shown."""
    said = number(None if value is None else float(value), missing="n/a")
    return said if value is None or said.startswith("-") else f"+{said}"
