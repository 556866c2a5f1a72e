"""Shared helpers for the panels: resolving inputs, rendering errors, small HTML tables."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from rollbackkit import cards
from rollbackkit.cards import FAIL
from rollbackkit.errors import RollbackkitError

if TYPE_CHECKING:
    from rollbackkit.registry.store import Registry

RegistryLike = Any
"""A :class:`~rollbackkit.registry.store.Registry` or a path inside the project."""


def registry_of(source: RegistryLike) -> Registry:
    """A registry from a registry or a project path."""
    from rollbackkit.registry.store import Registry

    return source if isinstance(source, Registry) else Registry(Path(source))


def error_html(exc: BaseException) -> str:
    """One readable line for an error (what happened and what to do), never a traceback."""
    known = exc if isinstance(exc, RollbackkitError) else None
    text = f"{known.message} {known.hint}".strip() if known else f"{type(exc).__name__}: {exc}"
    return f'<div class="rollbackkit-error" style="color:{FAIL}">&#9888; {html.escape(text)}</div>'


def guarded(target: widgets.HTML, action: Callable[[], None]) -> bool:
    """Run ``action``; on any error show it in ``target`` and return False."""
    try:
        action()
    except Exception as exc:  # a panel shows errors; it never raises into the notebook
        target.value = error_html(exc)
        return False
    return True


def badge(status: str) -> str:
    """A status label in the cards' palette (:func:`rollbackkit.cards.badge`: a translucent tint
    of the status's tone, the theme's text colour)."""
    return cards.badge(status, css="rollbackkit-status")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], css: str, row_styles: Sequence[str] = ()) -> str:
    """A small HTML table; cells are escaped unless they are marked safe (``Safe``)."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = row_styles[i] if i < len(row_styles) else ""
        cells = "".join(
            f"<td style='padding:2px 8px;text-align:left'>{c if isinstance(c, Safe) else html.escape(str(c))}</td>"
            for c in row
        )
        body.append(f"<tr style='{style}'>{cells}</tr>")
    return f"<table class='{css}' style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"


class Safe(str):
    """HTML that :func:`table` inserts without escaping (built from escaped parts)."""

    __slots__ = ()


MAX_POINTS = 10_000
"""The most points (markers, line vertices, bars, heatmap cells) one panel's figure sends to the browser."""


def points_in(figure: Any) -> int:
    """How many points ``figure`` (a plotly figure or figure widget) sends: every trace's x/y
    values, or its z cells for a heatmap; what :data:`MAX_POINTS` bounds."""
    total = 0
    for trace in figure.data:
        z = getattr(trace, "z", None)
        if z is not None:
            total += sum(len(row) for row in z)
            continue
        values = getattr(trace, "x", None)
        if values is None:
            values = getattr(trace, "y", None)
        total += len(values) if values is not None else 0
    return total


PLOTLY_MIME = "application/vnd.plotly.v1+json"
"""The plotly figure's MIME type (JupyterLab's and Voila's plotly renderer draw it)."""


class StaticFigure(widgets.Output):
    """A figure that never updates in place: a plain ``go.Figure`` shown as plotly's JSON output
    (:data:`PLOTLY_MIME`) in an ``Output`` widget. A saved notebook then holds the figure's data only;
    a ``FigureWidget`` also saves about 5 MB of plotly.js in its widget state. :meth:`show` replaces
    the figure (a click, another column); figures a live refresh redraws keeping the user's zoom stay
    ``FigureWidget`` s.

    Attributes:
        figure: The ``go.Figure`` shown (an empty one before :meth:`show`).
    """

    def __init__(self, **kwargs: Any) -> None:
        import plotly.graph_objects as go

        super().__init__(**kwargs)
        self.figure: go.Figure = go.Figure()

    @property
    def data(self) -> Any:
        """The shown figure's traces (as a ``FigureWidget``'s ``data``)."""
        return self.figure.data

    def show(self, figure: Any) -> None:
        """Show ``figure`` in place of the last one (set as the widget's outputs: no kernel context
        needed, so a callback or a live refresh thread may call it)."""
        import json

        import plotly.io as pio

        self.figure = figure
        plotted = json.loads(pio.to_json(figure, validate=False))
        plotted["config"] = {"displaylogo": False, "responsive": True}
        text = f"<plotly figure: {len(figure.data)} traces>"
        self.outputs: tuple[dict[str, Any], ...] = (
            {"output_type": "display_data", "data": {PLOTLY_MIME: plotted, "text/plain": text}, "metadata": {}},
        )

    def clear(self) -> None:
        """Show nothing."""
        import plotly.graph_objects as go

        self.figure = go.Figure()
        self.outputs = ()
