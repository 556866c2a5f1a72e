"""Typed result of ``rollback --dry-run``: what would shift, its preflight, and per version that
would lose traffic the rows a rollback would quarantine and backfill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollbackkit.ops.assignment_results import Cancelled, Preflight


@dataclass(frozen=True)
class PlannedRows:
    """What a rollback would do to the rows one version that loses traffic wrote.

    Attributes:
        version: The version that would lose traffic.
        logged: False when there is no prediction log to look in.
        rows: Rows it wrote in the environment.
        quarantine: Rows the rollback would quarantine (its rows not yet quarantined or
            backfilled; 0 when no server writing the log does the rollback).
        backfill: Rows a backfill would then re-score (already quarantined ones included).
        already_backfilled: Rows re-scored before.
    """

    version: str
    logged: bool
    rows: int = 0
    quarantine: int = 0
    backfill: int = 0
    already_backfilled: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class RollbackPlan:
    """What ``rollback --dry-run`` found: what would shift, its preflight, the rows to repair.

    Attributes:
        name: Bundle name.
        env: Environment.
        target: The version the rollback would go to.
        previous: The version it would take traffic from (the canary if one runs, else the
            live version); None when nothing serves.
        cancelled: The canary or shadow it would stop, or None (``cancelled`` in the JSON:
            ``{"role", "version", "kept"}``).
        leaving: Every version that would lose traffic (a canary and the live version when
            the target is neither).
        via: The server URL that would shift traffic, or ``workspace``.
        preflight: The target's preflight (against ``--features`` when given).
        rows: Per version in ``leaving``, the rows it would quarantine and backfill.
    """

    name: str
    env: str
    target: str
    previous: str | None
    leaving: list[str]
    via: str
    preflight: Preflight
    rows: list[PlannedRows]
    cancelled: Cancelled | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``rollback --dry-run --json`` prints."""
        return {
            **vars(self),
            "preflight": self.preflight.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            "cancelled": dict(vars(self.cancelled)) if self.cancelled is not None else None,
        }
