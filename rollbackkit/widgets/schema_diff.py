"""SchemaDiffPanel: what changed between two versions, colour-coded."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from rollbackkit.widgets._common import RegistryLike, guarded, table


class SchemaDiffPanel(widgets.VBox):
    """Features added (green), removed (red) and changed (amber); the model's class, steps
    and parameters; output contract and serving config key by key; gates one by one; the
    preprocessing code as a unified diff.

    Args:
        a: The "from" version: a loaded bundle/description or ``NAME@VERSION``.
        b: The "to" version.
        registry: A registry or project path (needed for ``NAME@VERSION`` references).
    """

    def __init__(self, a: Any = None, b: Any = None, registry: RegistryLike | None = None) -> None:
        self.registry = registry
        self.result: Any = None
        self.title = widgets.HTML()
        self.features = widgets.HTML()
        self.details = widgets.HTML()
        super().__init__([self.title, self.features, self.details])
        self.add_class("rollbackkit-schema-diff")
        if a is not None and b is not None:
            self.update(a, b)

    def update(self, a: Any, b: Any) -> None:
        """Diff ``a`` -> ``b`` and re-render."""
        from rollbackkit.ops.compare import diff

        self.features.value = self.details.value = ""

        def render() -> None:
            self.result = diff(a, b, self.registry if self.registry is not None else ".")
            self._render(self.result)

        guarded(self.title, render)

    def _render(self, result: Any) -> None:
        f = result.features
        summary = (
            f"<b>{html.escape(result.a)} &rarr; {html.escape(result.b)}</b>: "
            f"<span class='added'>{len(f.added)} added</span>, <span class='removed'>{len(f.removed)} removed</span>,"
            f" <span class='changed'>{len(f.changed)} changed</span>"
            + (", order changed" if f.reordered else "")
            + (", <span class='changed'>model changed</span>" if not result.model.empty else "")
        )
        self.title.value = "<h4 style='margin:4px 0'>Schema diff</h4>" + (
            summary if not result.empty else f"{summary} &mdash; no differences"
        )
        rows = [("added", n, "", "", "") for n in f.added] + [("removed", n, "", "", "") for n in f.removed]
        rows += [("changed", c.name, c.field, _short(c.before), _short(c.after)) for c in f.changed]
        colours = {"added": "#dafbe1", "removed": "#ffebe9", "changed": "#fff8c5"}
        self.features.value = table(
            ["", "feature", "field", "from", "to"],
            rows,
            "rollbackkit-feature-diff",
            [f"background:{colours[r[0]]}" for r in rows],
        )
        self.details.value = result.to_html()


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
