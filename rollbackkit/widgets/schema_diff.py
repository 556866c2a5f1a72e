"""SchemaDiffPanel: what changed between two versions, grouped by section, with reference distributions."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from rollbackkit.cards import ACCENT, QUIET
from rollbackkit.widgets._common import RegistryLike, StaticFigure, guarded

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rollbackkit.analysis.diff_distributions import FeatureDistributions
    from rollbackkit.analysis.diffsections import DiffSection
    from rollbackkit.ops.compare import ReadableDiff

COLUMNS = 2
"""Small histograms per row of the distributions figure."""


class SchemaDiffPanel(widgets.VBox):
    """A version diff grouped by section (model, features, output contract, gates one by one,
    serving config, preprocessing code, and training data/runtime when they differ), each
    collapsible with its count; changed features' reference distributions side by side.

    Args:
        a: The "from" version: a loaded bundle/description or ``NAME@VERSION``.
        b: The "to" version.
        registry: A registry or project path (needed for ``NAME@VERSION`` references).

    Attributes:
        result: The :class:`~rollbackkit.analysis.diffreport.BundleDiff` (None before a diff).
        readable: The grouped diff with its distributions (:func:`rollbackkit.ops.compare.readable_diff`).
        features: The features section (HTML); ``details`` the other sections; ``figure`` the histograms
            (a plain ``go.Figure`` shown in ``plot``, a :class:`~rollbackkit.widgets._common.StaticFigure`).
    """

    def __init__(self, a: Any = None, b: Any = None, registry: RegistryLike | None = None) -> None:
        self.registry = registry
        self.result: Any = None
        self.readable: ReadableDiff | None = None
        self.title = widgets.HTML()
        self.model = widgets.HTML()
        self.features = widgets.HTML()
        self.plot = StaticFigure()
        self.figure_box = widgets.VBox([self.plot], layout=widgets.Layout(display="none"))
        self.details = widgets.HTML()
        super().__init__([self.title, self.model, self.features, self.figure_box, self.details])
        self.add_class("rollbackkit-schema-diff")
        if a is not None and b is not None:
            self.update(a, b)

    @property
    def figure(self) -> go.Figure:
        """The distributions figure shown (empty before a diff with changed features)."""
        return self.plot.figure

    def update(self, a: Any, b: Any) -> None:
        """Diff ``a`` -> ``b`` and re-render."""
        from rollbackkit.ops.compare import readable_diff

        self.model.value = self.features.value = self.details.value = ""
        self.figure_box.layout.display = "none"

        def render() -> None:
            self.readable = readable_diff(a, b, self.registry if self.registry is not None else ".")
            self.result = self.readable.diff
            self._render(self.readable)

        guarded(self.title, render)

    def _render(self, readable: ReadableDiff) -> None:
        result, sections = readable.diff, readable.sections
        f = result.features
        total = sum(s.count for s in sections)
        summary = (
            f"<b>{html.escape(result.a)} &rarr; {html.escape(result.b)}</b>: "
            f"{len(f.added)} feature(s) added, {len(f.removed)} removed, {len({c.name for c in f.changed})} changed"
            + ("" if result.model.empty else "; model changed")
        )
        self.title.value = "<h4 style='margin:4px 0'>Schema diff</h4>" + (
            f"{summary} ({total} changes)" if total else f"{summary} &mdash; no differences"
        )
        by_key = {s.key: s for s in sections}
        self.model.value = _block(by_key["model"])
        self.features.value = _block(by_key["features"], css="rollbackkit-feature-diff")
        self.details.value = "".join(_block(s) for s in sections if s.key not in ("model", "features"))
        if readable.distributions:
            self.plot.show(distributions_figure(readable.distributions, result.a, result.b))
            self.figure_box.layout.display = "flex"
        if readable.note:
            self.features.value += f"<div style='opacity:0.75'>{html.escape(readable.note)}</div>"


def _block(s: DiffSection, css: str = "") -> str:
    """A section as a collapsible block, open when it has changes, with its count in the heading."""
    from rollbackkit.analysis.card_views import section_html

    n = s.count
    return (
        f"<details class='rollbackkit-diff-section rollbackkit-diff-{html.escape(s.key)}'{' open' if n else ''} "
        "style='margin:4px 0;border-left:3px solid rgba(127,127,127,0.4);padding-left:8px'>"
        f"<summary style='cursor:pointer;font-weight:600'>{html.escape(s.title)} ({n})</summary>"
        f"{section_html(s, css)}</details>"
    )


def distributions_figure(dists: list[FeatureDistributions], a: str, b: str) -> go.Figure:
    """Small histograms, one per feature, of both versions' reference profile (shares per bin)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = max(1, -(-len(dists) // COLUMNS))
    fig = make_subplots(
        rows=rows,
        cols=COLUMNS,
        subplot_titles=[_title(d) for d in dists],
        vertical_spacing=min(0.12, 0.5 / rows),
        horizontal_spacing=0.08,
    )
    for i, d in enumerate(dists):
        row, col = i // COLUMNS + 1, i % COLUMNS + 1
        for version, shares, colour in ((a, d.a, QUIET), (b, d.b, ACCENT)):
            fig.add_trace(
                go.Bar(
                    x=d.labels,
                    y=shares,
                    name=version,
                    legendgroup=version,
                    showlegend=i == 0,
                    marker={"color": colour},
                    opacity=0.75,
                    hovertemplate=f"{html.escape(version)}<br>%{{x}}: %{{y:.1%}}<extra>{html.escape(d.name)}</extra>",
                ),
                row=row,
                col=col,
            )
    fig.update_layout(
        barmode="group",
        height=min(200 + 190 * rows, 1400),
        margin={"t": 50, "b": 30, "l": 40, "r": 10},
        title={"text": "Reference distributions (share of rows)", "font": {"size": 14}},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        bargap=0.1,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(127,127,127,0.06)",
    )
    fig.update_xaxes(showticklabels=True, tickfont={"size": 9}, nticks=6)
    fig.update_yaxes(tickformat=".0%", tickfont={"size": 9})
    return fig


def _title(d: FeatureDistributions) -> str:
    """``plan`` plus missing and ±inf shares when either side has some (short: no overlap)."""
    name = d.name if len(d.name) <= 32 else d.name[:31] + "…"
    missing = f" (missing {d.missing[0]:.0%} → {d.missing[1]:.0%})" if any(d.missing) else ""
    infinite = f" (±inf {d.infinite[0]:.0%} → {d.infinite[1]:.0%})" if any(d.infinite) else ""
    return html.escape(name) + missing + infinite
