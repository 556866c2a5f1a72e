"""What the demo did, for its summary (:mod:`rollbackkit.screens.demo`): the versions it
registered, what preflight said, the gates, the rows and the runbook."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollbackkit.ops.log_results import AffectedRows, BackfillResult
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.serving.status import GateStatus


@dataclass(frozen=True)
class DemoVersion:
    """A version the demo pipeline registered, with its number of input features."""

    version: str
    bundle_id: str
    message: str
    features: int


@dataclass(frozen=True)
class SchemaStory:
    """What preflight said of v1.0.0 on the 52 live columns, and with one column missing."""

    live_52: str
    dropped: list[str]
    missing_column: str
    named: list[str]


@dataclass
class DemoResult:
    """What the demo did, for the summary (a step that did not run leaves its field None)."""

    directory: Path
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    versions: list[DemoVersion] = field(default_factory=list)
    shift_ms: float | None = None
    breach_to_shift_ms: float | None = None
    gates: GateStatus | None = None
    preflight: SchemaStory | None = None
    affected: AffectedRows | None = None
    backfill: BackfillResult | None = None
    runbook: dict[str, Any] = field(default_factory=dict)
    history: list[Assignment] = field(default_factory=list)
