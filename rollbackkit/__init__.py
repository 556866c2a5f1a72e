"""rollbackkit: version model bundles on git + DVC and roll them back in seconds, audited.

The public API is importable from here; heavy modules load on first use, so
``import rollbackkit`` stays fast and side-effect free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollbackkit.errors import RollbackkitError

__version__ = "0.1.0"

_LAZY = {
    "Registry": "rollbackkit.registry.store",
    "VersionInfo": "rollbackkit.bundle.version",
    "VerifyReport": "rollbackkit.registry.verify",
    "LoadedBundle": "rollbackkit.bundle.model",
    "Manifest": "rollbackkit.bundle.manifest",
    "Schema": "rollbackkit.bundle.schema",
    "Reference": "rollbackkit.refs",
    "Version": "rollbackkit.refs",
    # operations, as the runbook notebooks call them
    "deploy": "rollbackkit.ops.traffic",
    "rollback": "rollbackkit.ops.traffic",
    "promote": "rollbackkit.ops.traffic",
    "rollback_target": "rollbackkit.ops.runbook_targets",
    "rollback_plan": "rollbackkit.ops.plans",
    "rolled_back_from": "rollbackkit.ops.runbook_targets",
    "timeline": "rollbackkit.ops.timeline",
    "situation": "rollbackkit.ops.situation",
    "history": "rollbackkit.ops.history",
    "verify_journal": "rollbackkit.ops.journal_check",
    "preflight": "rollbackkit.ops.situation",
    "gate_status": "rollbackkit.ops.situation",
    "check_gates": "rollbackkit.ops.situation",
    "affected": "rollbackkit.ops.predictions",
    "backfill": "rollbackkit.ops.predictions",
    "side_effects": "rollbackkit.ops.predictions",
    "has_prediction_log": "rollbackkit.ops.predictions",
    "prediction_drift": "rollbackkit.ops.predictions",
    "logged_window": "rollbackkit.ops.predictions",
    "gate_history": "rollbackkit.ops.gate_history",
    "drift_over_time": "rollbackkit.ops.drift_series",
    "preview_rollback": "rollbackkit.ops.preview",
    "ingest_labels": "rollbackkit.ops.labels",
    "record": "rollbackkit.ops.runbooks",
    "read_features": "rollbackkit.bundle.frames",
    "actor": "rollbackkit.registry.people",
    "import_mlflow": "rollbackkit.ops.mlflow_import",
    "mlflow_sync": "rollbackkit.ops.mlflow_import",
    # what the operations return
    "AssignmentResult": "rollbackkit.ops.assignment_results",
    "AffectedRows": "rollbackkit.ops.log_results",
    "BackfillResult": "rollbackkit.ops.log_results",
    "LabelIngest": "rollbackkit.ops.label_results",
    "PredictionShares": "rollbackkit.ops.log_results",
    "SideEffects": "rollbackkit.ops.log_results",
    "ImportResult": "rollbackkit.ops.mlflow_import",
    "Situation": "rollbackkit.ops.situation_result",
    "AssignmentHistory": "rollbackkit.ops.history",
    "JournalCheck": "rollbackkit.ops.journal_check",
    "Timeline": "rollbackkit.ops.timeline_types",
    "RollbackPlan": "rollbackkit.ops.plan_results",
    "ServerStatus": "rollbackkit.serving.status",
    "GateStatus": "rollbackkit.serving.status",
    "GateHistory": "rollbackkit.ops.gate_history",
    "DriftSeries": "rollbackkit.analysis.drift_series",
    "RollbackPreview": "rollbackkit.ops.preview",
}

if TYPE_CHECKING:
    from rollbackkit.analysis.drift_series import DriftSeries
    from rollbackkit.bundle.frames import read_features
    from rollbackkit.bundle.manifest import Manifest
    from rollbackkit.bundle.model import LoadedBundle
    from rollbackkit.bundle.schema import Schema
    from rollbackkit.bundle.version import VersionInfo
    from rollbackkit.ops.assignment_results import AssignmentResult
    from rollbackkit.ops.drift_series import drift_over_time
    from rollbackkit.ops.gate_history import GateHistory, gate_history
    from rollbackkit.ops.history import AssignmentHistory, history
    from rollbackkit.ops.journal_check import JournalCheck, verify_journal
    from rollbackkit.ops.label_results import LabelIngest
    from rollbackkit.ops.labels import ingest_labels
    from rollbackkit.ops.log_results import AffectedRows, BackfillResult, PredictionShares, SideEffects
    from rollbackkit.ops.mlflow_import import ImportResult, import_mlflow, mlflow_sync
    from rollbackkit.ops.plan_results import RollbackPlan
    from rollbackkit.ops.plans import rollback_plan
    from rollbackkit.ops.predictions import (
        affected,
        backfill,
        has_prediction_log,
        logged_window,
        prediction_drift,
        side_effects,
    )
    from rollbackkit.ops.preview import RollbackPreview, preview_rollback
    from rollbackkit.ops.runbook_targets import rollback_target, rolled_back_from
    from rollbackkit.ops.runbooks import record
    from rollbackkit.ops.situation import check_gates, gate_status, preflight, situation
    from rollbackkit.ops.situation_result import Situation
    from rollbackkit.ops.timeline import timeline
    from rollbackkit.ops.timeline_types import Timeline
    from rollbackkit.ops.traffic import deploy, promote, rollback
    from rollbackkit.refs import Reference, Version
    from rollbackkit.registry.people import actor
    from rollbackkit.registry.store import Registry
    from rollbackkit.registry.verify import VerifyReport
    from rollbackkit.serving.status import GateStatus, ServerStatus


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rollbackkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AffectedRows",
    "AssignmentHistory",
    "AssignmentResult",
    "BackfillResult",
    "DriftSeries",
    "GateHistory",
    "GateStatus",
    "ImportResult",
    "JournalCheck",
    "LabelIngest",
    "LoadedBundle",
    "Manifest",
    "PredictionShares",
    "Reference",
    "Registry",
    "RollbackPlan",
    "RollbackPreview",
    "RollbackkitError",
    "Schema",
    "ServerStatus",
    "SideEffects",
    "Situation",
    "Timeline",
    "VerifyReport",
    "Version",
    "VersionInfo",
    "__version__",
    "actor",
    "affected",
    "backfill",
    "check_gates",
    "deploy",
    "drift_over_time",
    "gate_history",
    "gate_status",
    "has_prediction_log",
    "history",
    "import_mlflow",
    "ingest_labels",
    "logged_window",
    "mlflow_sync",
    "prediction_drift",
    "preflight",
    "preview_rollback",
    "promote",
    "read_features",
    "record",
    "rollback",
    "rollback_plan",
    "rollback_target",
    "rolled_back_from",
    "side_effects",
    "situation",
    "timeline",
    "verify_journal",
]
