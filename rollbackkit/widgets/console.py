"""RollbackConsole: every panel in one tabbed app, the thing an on-call engineer opens."""

from __future__ import annotations

import ipywidgets as widgets

from rollbackkit.widgets._common import RegistryLike, guarded, registry_of
from rollbackkit.widgets.drift import DriftPanel
from rollbackkit.widgets.gates import GatesPanel
from rollbackkit.widgets.runbook import RunbookPanel
from rollbackkit.widgets.schema_diff import SchemaDiffPanel
from rollbackkit.widgets.timeline import TimelinePanel
from rollbackkit.widgets.versions import VersionExplorer

TABS = ("Versions", "Schema diff", "Drift", "Gates", "Timeline", "Runbooks")


class RollbackConsole(widgets.VBox):
    """Versions, schema diff, drift, gates, timeline and runbooks for ``name`` in ``env``.

    Comparing two versions in the Versions tab fills the Schema diff tab and the Drift tab
    (the "to" version's logged predictions and features against its reference profile).

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
        self.timeline = TimelinePanel(name, env, self.registry)
        self.runbook = RunbookPanel(self.registry, name, env)
        self.tabs = widgets.Tab(
            children=[self.explorer, self.schema_diff, self.drift_box, self.gates, self.timeline, self.runbook]
        )
        for i, title in enumerate(TABS):
            self.tabs.set_title(i, title)
        self.explorer.on_compare(self.compare)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([widgets.HBox([self.header, self.refresh_button]), self.tabs])
        self.add_class("rollbackkit-console")
        self.refresh()

    def refresh(self) -> None:
        """Re-read everything from the API (git tags, the journal, the server or log)."""
        guarded(self.header, self._refresh)

    def _refresh(self) -> None:
        from rollbackkit.ops.situation import gate_status, situation

        now = situation(self.registry.root, self.name, self.env)
        where = f"server {now.server}" if now.server else "no server running"
        self.header.value = (
            f"<h3 style='margin:4px 0'>{self.name} in {self.env}: serving "
            f"<span class='rollbackkit-serving'>{now.serving or 'nothing'}</span></h3><small>{where}</small>"
        )
        self.explorer.refresh()
        self.timeline.refresh()
        self.gates.update(gate_status(self.registry.root, self.name, self.env))
        picked = self.explorer.selection
        if picked is not None and self.schema_diff.result is None:
            self.compare(*picked, switch=False)

    def compare(self, a: str, b: str, switch: bool = True) -> None:
        """Show ``a`` -> ``b`` in the Schema diff tab and ``b``'s drift in the Drift tab."""
        self.schema_diff.update(a, b)
        self.show_drift(b)
        if switch:
            self.tabs.selected_index = TABS.index("Schema diff")

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

    @property
    def tab_titles(self) -> list[str]:
        """Titles of the tabs, in order."""
        return [self.tabs.get_title(i) for i in range(len(self.tabs.children))]
