"""RollbackConsole: every panel in one tabbed app, the thing an on-call engineer opens."""

from __future__ import annotations

import html
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as widgets

from rollbackkit.widgets._common import RegistryLike, error_html, guarded, registry_of
from rollbackkit.widgets.drift import DriftPanel
from rollbackkit.widgets.gates import GatesPanel
from rollbackkit.widgets.live import LiveControl, serialised
from rollbackkit.widgets.runbook import RunbookPanel
from rollbackkit.widgets.schema_diff import SchemaDiffPanel
from rollbackkit.widgets.serving_now import NowServing, now_badge, now_serving
from rollbackkit.widgets.versions import VersionExplorer

if TYPE_CHECKING:
    from rollbackkit.ops.situation_result import Situation
    from rollbackkit.serving.status import GateStatus
    from rollbackkit.widgets.timeline import TimelinePanel

TABS = (
    "Versions",
    "Schema diff",
    "Drift",
    "Drift over time",
    "Gates",
    "Gates over time",
    "Timeline",
    "Rollback preview",
    "Runbooks",
)
"""Every tab, in order; a lazy tab whose panel's module is not installed is left out."""

LAZY: dict[str, tuple[str, str]] = {
    "Drift over time": ("rollbackkit.widgets.drift_time", "DriftOverTimePanel"),
    "Gates over time": ("rollbackkit.widgets.gates_time", "GatesOverTimePanel"),
    "Timeline": ("rollbackkit.widgets.timeline", "TimelinePanel"),
    "Rollback preview": ("rollbackkit.widgets.preview", "RollbackPreviewPanel"),
}
"""Tabs built when first opened (title -> module, panel class), so the console opens fast."""

LIVE_INTERVAL = 10.0


@dataclass(frozen=True)
class Snapshot:
    """What one refresh of the console read (off the kernel's thread when live).

    ``panel_error`` is why the open tab's fetch failed: that tab shows it as one line, the
    header and the gates still update.
    """

    situation: Situation
    gates: GateStatus
    now: list[NowServing]
    panel: widgets.Widget | None = None
    panel_data: object = None
    panel_error: Exception | None = None


class RollbackConsole(widgets.VBox):
    """Versions, schema diff, drift (now and over time), gates (now and over time), the
    timeline, the rollback preview and runbooks for ``name`` in ``env``.

    Comparing two versions in the Versions tab fills the Schema diff tab and the Drift tab
    (the "to" version's logged predictions and features against its reference profile).
    The header names what serves now; its Live toggle refreshes the header, the gates and
    the open tab every few seconds without blocking the kernel.

    Args:
        repo: A registry or a project path.
        name: Bundle name.
        env: Environment.
    """

    def __init__(self, repo: RegistryLike, name: str, env: str = "prod") -> None:
        self.registry = registry_of(repo)
        self.name, self.env = name, env
        self.header = widgets.HTML()
        self.explorer = VersionExplorer(self.registry, name)
        self.schema_diff = SchemaDiffPanel(registry=self.registry)
        self.drift_box = widgets.VBox()
        self.drift: DriftPanel | None = None
        self.gates = GatesPanel()
        self.runbook = RunbookPanel(self.registry, name, env)
        self.panels: dict[str, widgets.Widget] = {
            "Versions": self.explorer,
            "Schema diff": self.schema_diff,
            "Drift": self.drift_box,
            "Gates": self.gates,
            "Runbooks": self.runbook,
        }
        titles = [t for t in TABS if t not in LAZY or importlib.util.find_spec(LAZY[t][0]) is not None]
        self._slots = {t: widgets.VBox([widgets.HTML("<i>opens when selected</i>")]) for t in titles if t in LAZY}
        self.tab_errors = {t: widgets.HTML() for t in self._slots}
        self.tabs = widgets.Tab(children=[self.panels.get(t) or self._slots[t] for t in titles])
        for i, title in enumerate(titles):
            self.tabs.set_title(i, title)
        self.tabs.observe(lambda _: self._build_selected(), names="selected_index")
        self.explorer.on_compare(self.compare)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.live = LiveControl(self._fetch, self._show, interval=LIVE_INTERVAL)
        super().__init__([widgets.HBox([self.header, self.refresh_button, self.live]), self.tabs])
        self.add_class("rollbackkit-console")
        self.refresh()

    @property
    def tab_titles(self) -> list[str]:
        """Titles of the tabs, in order."""
        return [self.tabs.get_title(i) for i in range(len(self.tabs.children))]

    def select(self, title: str) -> widgets.Widget:
        """Open the tab ``title`` (building its panel the first time) and return its panel."""
        self.tabs.selected_index = self.tab_titles.index(title)
        return self.panel(title)

    def panel(self, title: str) -> widgets.Widget:
        """The panel of tab ``title``, built now if it was not yet (a failure shows in the tab)."""
        if title not in self.panels:
            slot = self._slots[title]
            module, cls = LAZY[title]
            try:
                built = self._make(getattr(importlib.import_module(module), cls))
            except Exception as exc:  # a panel that cannot build says why in its tab
                built = widgets.HTML(error_html(exc))
            serialised(built)  # its own Refresh and the console's Live never fetch at once
            self.panels[title] = built
            slot.children = [built]
        return self.panels[title]

    def _tab_error(self, title: str, exc: Exception | None) -> None:
        """Show (or clear) one error line above tab ``title``'s panel."""
        line, slot = self.tab_errors.get(title), self._slots.get(title)
        if line is None or slot is None:
            return
        line.value = error_html(exc) if exc is not None else ""
        panel = self.panels.get(title)
        if panel is not None:
            slot.children = [line, panel] if exc is not None else [panel]

    @property
    def timeline(self) -> TimelinePanel:
        """The Timeline tab's panel (built on first use)."""
        return self.panel("Timeline")  # type: ignore[return-value]

    def _make(self, cls: Callable[..., widgets.Widget]) -> widgets.Widget:
        if cls.__name__ == "TimelinePanel":
            return cls(self.name, self.env, self.registry)
        return cls(self.registry.root, self.name, self.env)

    def _build_selected(self) -> None:
        index = self.tabs.selected_index
        if index is not None:
            self.panel(self.tab_titles[index])

    def refresh(self) -> None:
        """Re-read everything from the API (git tags, the journal, the server or log)."""

        def everything() -> None:
            snap = self._fetch()
            self._show(snap)  # the open tab's panel included
            self.explorer.refresh()
            picked = self.explorer.selection
            if picked is not None and self.schema_diff.result is None:
                self.compare(*picked, switch=False)
            for title, panel in self.panels.items():
                if title in LAZY and panel is not snap.panel and hasattr(panel, "refresh"):
                    try:
                        panel.refresh()
                    except Exception as exc:  # one tab's failure stays in that tab
                        self._tab_error(title, exc)
                    else:
                        self._tab_error(title, None)

        guarded(self.header, everything)

    def _fetch(self) -> Snapshot:
        """Read what serves, the gates and the open tab's data (no widget is touched)."""
        from rollbackkit.ops.situation import gate_status, situation

        now = situation(self.registry.root, self.name, self.env)
        gates = gate_status(self.registry.root, self.name, self.env)
        serving = now_serving(self.registry, [self.name], self.env)
        index = self.tabs.selected_index
        panel = self.panels.get(self.tab_titles[index]) if index is not None else None
        fetch = getattr(panel, "_fetch", None)
        data, error = None, None
        if callable(fetch):
            try:
                data = fetch()
            except Exception as exc:  # the tab says why; the header and gates still update
                error = exc
        return Snapshot(now, gates, serving, panel, data, error)

    def _show(self, snap: Snapshot) -> None:
        """Put a :class:`Snapshot` on screen (on the kernel's event loop when live)."""
        now = snap.situation
        where = f"server {html.escape(now.server)}" if now.server else "no server running"
        marks = " ".join(now_badge(n) for n in snap.now if n.role != "live")
        live = next((n for n in snap.now if n.role == "live"), None)
        self.header.value = (
            f"<h3 style='margin:4px 0'>{html.escape(self.name)} in {html.escape(self.env)}: serving "
            f"<span class='rollbackkit-serving'>{html.escape(now.serving or 'nothing')}</span> "
            f"{now_badge(live) if live else ''}</h3><small>{where}</small> {marks}"
        )
        self.gates.update(snap.gates, serving=snap.now)
        title = next((t for t, p in self.panels.items() if p is snap.panel), None)
        show = getattr(snap.panel, "_show", None)
        error = snap.panel_error
        if error is None and snap.panel_data is not None and callable(show):
            try:
                show(snap.panel_data)
            except Exception as exc:  # as a failing fetch: that tab only
                error = exc
        if title is not None:
            self._tab_error(title, error)

    def compare(self, a: str, b: str, switch: bool = True) -> None:
        """Show ``a`` -> ``b`` in the Schema diff tab and ``b``'s drift in the Drift tab."""
        self.schema_diff.update(a, b)
        self.show_drift(b)
        if switch:
            self.tabs.selected_index = self.tab_titles.index("Schema diff")

    def show_drift(self, ref: str) -> None:
        """Drift of a version's logged predictions and features against its reference."""
        message = widgets.HTML()

        def build() -> None:
            from rollbackkit.bundle.frames import parts
            from rollbackkit.ops.predictions import logged_window

            bundle = self.registry.describe(ref)
            window = logged_window(self.registry.root, self.name, self.env, bundle.version)
            if window.empty:
                message.value = f"No logged predictions of {ref} in {self.env} yet."
                self.drift_box.children = [message]
                return
            reference = parts(bundle.reference, ("output", "input"))
            primary = bundle.schema.output.primary
            by = "contract" if "contract" in window.columns and "contract" in reference.columns else None
            self.drift = DriftPanel(reference, window, column=primary, by=by)
            self.drift_box.children = [widgets.HTML(f"<b>{ref}</b>: logged vs reference"), self.drift]

        if not guarded(message, build):
            self.drift_box.children = [message]
