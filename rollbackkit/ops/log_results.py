"""Typed results of reading the prediction log: a version's affected rows, a backfill, its
logged predictions' shares, and the side effects a runbook records (rows and their backfill).
Frozen dataclasses: ``from_dict`` reads a server's JSON (or the offline path's dict), ``to_dict``
gives it back key for key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rollbackkit.serving.status import known


@dataclass(frozen=True)
class TableRows:
    """Rows one log table holds for a version."""

    table: str
    rows: int


@dataclass(frozen=True)
class AffectedRows:
    """Rows a version wrote in an environment: counts, time range, tables, a sample.

    Attributes:
        name: Bundle name.
        env: Environment.
        version: The version whose rows these are.
        rows: All its rows.
        quarantined: Rows marked bad, not yet re-scored.
        backfilled: Rows re-scored by a backfill.
        first: The first row's time (ISO), None without rows.
        last: The last row's time (ISO), None without rows.
        tables: Rows per log table.
        sample: The first rows (request id, row, time, deployment, status, outputs);
            None when left out.
        shadow_rows: Rows it scored as a shadow (never in production, not in ``rows``); 0
            from an older server.
    """

    name: str
    env: str
    version: str
    rows: int
    quarantined: int
    backfilled: int
    first: str | None
    last: str | None
    tables: list[TableRows]
    sample: list[dict[str, Any]] | None = None
    shadow_rows: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AffectedRows:
        """From ``PredictionLog.affected()`` or the admin API's ``affected``."""
        return cls(**{**known(cls, data), "tables": [TableRows(**known(TableRows, t)) for t in data["tables"]]})

    def without_sample(self) -> AffectedRows:
        """The counts only."""
        return AffectedRows(**{**vars(self), "sample": None})

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``affected --json`` prints."""
        out = {**vars(self), "tables": [{"table": t.table, "rows": t.rows} for t in self.tables]}
        if self.sample is None:
            del out["sample"]
        return out


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill re-scored: rows done now, done before, failed (with up to five reasons)."""

    rescored: int
    already_done: int
    failed: int
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackfillResult:
        """From ``PredictionLog.backfill()`` or the admin API's ``backfill``."""
        return cls(**known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``backfill --json`` prints (``errors`` only when rows failed)."""
        done: dict[str, Any] = {"rescored": self.rescored, "already_done": self.already_done, "failed": self.failed}
        return {**done, "errors": self.errors} if self.failed else done


@dataclass(frozen=True)
class PredictionShares:
    """A version's logged primary predictions against its reference, binned, with PSI.

    Attributes:
        kind: ``numeric`` (shared equal-width bins) or ``categorical`` (one bin per class).
        column: The primary output column.
        n: Logged predictions counted.
        psi: Population stability index, reference to logged.
        bins: The left bin edges, or the class names.
        reference: The reference's share per bin.
        current: The logged predictions' share per bin.
        edges: All bin edges (numeric only).
    """

    kind: Literal["numeric", "categorical"]
    column: str
    n: int
    psi: float
    bins: list[Any]
    reference: list[float]
    current: list[float]
    edges: list[float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionShares:
        """From one version's entry of the admin API's ``drift``."""
        return cls(**known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """The entry's JSON."""
        out = {"kind": self.kind, "column": self.column, "n": self.n, "psi": self.psi, "bins": self.bins}
        if self.edges is not None:
            out["edges"] = self.edges
        return {**out, "reference": self.reference, "current": self.current}


@dataclass(frozen=True)
class SideEffects:
    """Rows a version wrote in an environment and (after a repair) their backfill.

    Attributes:
        version: The version looked for, or None when there was none to look for.
        logged: False when there is no prediction log to look in (``note`` says why).
        affected: Its rows' counts (no sample), or None.
        backfill: The backfill's result when one ran, or None.
        note: Why nothing was looked up.
    """

    version: str | None
    logged: bool
    affected: AffectedRows | None
    backfill: BackfillResult | None
    note: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SideEffects:
        """From :meth:`to_dict`."""
        affected, backfill = data["affected"], data["backfill"]
        return cls(
            version=data["version"],
            logged=data["logged"],
            affected=AffectedRows.from_dict(affected) if affected is not None else None,
            backfill=BackfillResult.from_dict(backfill) if backfill is not None else None,
            note=data.get("note"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what the rollback runbook records)."""
        out = {
            "version": self.version,
            "logged": self.logged,
            "affected": self.affected.to_dict() if self.affected is not None else None,
            "backfill": self.backfill.to_dict() if self.backfill is not None else None,
        }
        return {**out, "note": self.note} if self.note is not None else out
