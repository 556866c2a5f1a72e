"""VersionExplorer: every bundle and version, what serves now, and a pick of two to compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from rollbackkit.registry.store import Registry
    from rollbackkit.widgets.schema_diff import SchemaDiffPanel

from rollbackkit.cards import tint
from rollbackkit.widgets._common import RegistryLike, Safe, guarded, registry_of, table
from rollbackkit.widgets.serving_now import NowServing, now_badge, now_serving

SERVING_ROW = tint("good", 0.12)
"""The live version's row: a translucent green, readable in light and dark themes."""


class VersionExplorer(widgets.VBox):
    """A table of versions (id, created, message, assignments, what serves now) and two pickers.

    The version serving now carries a badge per environment (``serving prod``, ``canary 10%
    prod``) and its row is tinted. Compare opens the schema diff below the pickers; a host
    that registers :meth:`on_compare` (the console) takes the comparison over instead.

    Args:
        registry: A registry or a project path.
        name: Show one bundle only (default: all).
    """

    def __init__(self, registry: RegistryLike, name: str | None = None) -> None:
        self._source = registry
        self.name = name
        self.rows: list[dict[str, Any]] = []
        self.now: list[NowServing] = []
        self.table = widgets.HTML()
        self.diff: SchemaDiffPanel | None = None
        self.diff_box = widgets.VBox()
        self.a = widgets.Dropdown(description="from")
        self.b = widgets.Dropdown(description="to")
        self.compare = widgets.Button(description="Compare", button_style="primary", icon="code-fork")
        self.a.add_class("rollbackkit-from")
        self.b.add_class("rollbackkit-to")
        self._callbacks: list[Callable[[str, str], None]] = []
        self.compare.on_click(lambda _: self._on_compare())
        super().__init__([self.table, widgets.HBox([self.a, self.b, self.compare]), self.diff_box])
        self.add_class("rollbackkit-versions")
        self.refresh()

    def refresh(self) -> None:
        """Re-read versions and assignments from git."""
        guarded(self.table, self._load)

    @property
    def registry(self) -> Registry:
        """The registry (resolved on use, so a bad path shows as an error in the panel)."""
        return registry_of(self._source)

    def _load(self) -> None:
        from rollbackkit.registry.assignments import Deployments

        versions = self.registry.versions(self.name)
        deployments = Deployments(self.registry)
        names = sorted({v.name for v in versions})
        serving: dict[tuple[str, str], list[str]] = {}
        for bundle in names:
            for a in deployments.history(bundle):
                serving.setdefault((bundle, a.version), []).append(f"{a.env}:{a.action}")
        self.now = now_serving(self.registry, names)
        self.rows = [
            {
                "ref": f"{v.name}@{v.version}",
                "bundle_id": v.bundle_id,
                "created": v.created,
                "message": v.message,
                "assignments": serving.get((v.name, v.version), []),
                "now": [n for n in self.now if n.ref == f"{v.name}@{v.version}"],
            }
            for v in versions
        ]
        self.table.value = "<h4 style='margin:4px 0'>Versions</h4>" + table(
            ["version", "now", "bundle id", "created", "message", "assignments"],
            [
                (
                    r["ref"],
                    Safe(" ".join(now_badge(n) for n in r["now"])),
                    r["bundle_id"][:19],
                    r["created"],
                    r["message"],
                    ", ".join(r["assignments"]),
                )
                for r in self.rows
            ],
            "rollbackkit-version-table",
            [SERVING_ROW if any(n.role == "live" for n in r["now"]) else "" for r in self.rows],
        )
        refs = [r["ref"] for r in self.rows]
        self.a.options, self.b.options = refs, refs
        if len(refs) >= 2:
            self.a.value, self.b.value = refs[-2], refs[-1]

    @property
    def selection(self) -> tuple[str, str] | None:
        """The two versions picked for comparison (from, to)."""
        if self.a.value and self.b.value:
            return str(self.a.value), str(self.b.value)
        return None

    def on_compare(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(from_ref, to_ref)`` when Compare is clicked (instead of the diff below)."""
        self._callbacks.append(callback)

    def _on_compare(self) -> None:
        picked = self.selection
        if picked is None:
            return
        if not self._callbacks:
            self.show_diff(*picked)
        for callback in self._callbacks:
            guarded(self.table, lambda cb=callback: cb(*picked))  # type: ignore[misc]

    def show_diff(self, a: str, b: str) -> None:
        """Open the schema diff ``a`` -> ``b`` below the pickers (what Compare does on its own)."""
        from rollbackkit.widgets.schema_diff import SchemaDiffPanel

        if self.diff is None:
            self.diff = SchemaDiffPanel(a, b, self._source)
            self.diff_box.children = [self.diff]
        else:
            self.diff.update(a, b)
