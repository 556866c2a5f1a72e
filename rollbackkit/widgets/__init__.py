"""Jupyter panels (ipywidgets 8 + plotly): thin faces over the public API.

Every panel is an ``ipywidgets`` box that displays anywhere widgets do (JupyterLab,
Notebook, Voila). Panels own no state: they call the API and re-render, and an error shows
as a readable line inside the panel, never as a traceback.

- :class:`VersionExplorer`: bundles and versions, and a pick of two to compare.
- :class:`SchemaDiffPanel`: what changed between two versions, by section, with reference distributions.
- :class:`DriftPanel`: reference vs current distributions (histogram or ECDF), per slice.
- :class:`DriftOverTimePanel`: a logged column's drift per time window and slice (line, heatmap, any cell's histogram).
- :class:`GatesPanel`: each gate's status, observed vs threshold, evidence.
- :class:`TimelinePanel`: share of traffic per version over time, each change's reason, what serves now, runbooks.
- :class:`GatesOverTimePanel`: each gate's value vs its bound at every watchdog evaluation.
- :class:`RollbackPreviewPanel`: what a rollback would change: decisions that flip, per slice.
- :class:`RunbookPanel`: run a runbook with validated parameters and a progress bar.
- :class:`RollbackConsole`: all of them in one tabbed app for the on-call engineer.
- :class:`LiveControl`: a panel's Live toggle (fetch in a worker, show on the kernel's loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "VersionExplorer": "rollbackkit.widgets.versions",
    "SchemaDiffPanel": "rollbackkit.widgets.schema_diff",
    "DriftPanel": "rollbackkit.widgets.drift",
    "DriftOverTimePanel": "rollbackkit.widgets.drift_time",
    "GatesPanel": "rollbackkit.widgets.gates",
    "TimelinePanel": "rollbackkit.widgets.timeline",
    "GatesOverTimePanel": "rollbackkit.widgets.gates_time",
    "RollbackPreviewPanel": "rollbackkit.widgets.preview",
    "RunbookPanel": "rollbackkit.widgets.runbook",
    "RollbackConsole": "rollbackkit.widgets.console",
    "LiveControl": "rollbackkit.widgets.live",
}

if TYPE_CHECKING:
    from rollbackkit.widgets.console import RollbackConsole
    from rollbackkit.widgets.drift import DriftPanel
    from rollbackkit.widgets.drift_time import DriftOverTimePanel
    from rollbackkit.widgets.gates import GatesPanel
    from rollbackkit.widgets.gates_time import GatesOverTimePanel
    from rollbackkit.widgets.live import LiveControl
    from rollbackkit.widgets.preview import RollbackPreviewPanel
    from rollbackkit.widgets.runbook import RunbookPanel
    from rollbackkit.widgets.schema_diff import SchemaDiffPanel
    from rollbackkit.widgets.timeline import TimelinePanel
    from rollbackkit.widgets.versions import VersionExplorer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rollbackkit.widgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DriftOverTimePanel",
    "DriftPanel",
    "GatesOverTimePanel",
    "GatesPanel",
    "LiveControl",
    "RollbackConsole",
    "RollbackPreviewPanel",
    "RunbookPanel",
    "SchemaDiffPanel",
    "TimelinePanel",
    "VersionExplorer",
]
