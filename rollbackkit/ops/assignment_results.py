"""Typed results of a traffic change: what deploy, rollback and promote return to the faces (the
assignment recorded, its preflight, the canary or shadow a rollback cancelled, the runbook that
followed), read from a server's JSON (or the offline path's dict) and given back key for key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from rollbackkit.ops.convergence import Convergence, GitRemote
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.status import ServerStatus, known, without_none

if TYPE_CHECKING:
    from rollbackkit.bundle.compat import Adaptation, Finding  # pydantic models: loaded by a preflight only
    from rollbackkit.bundle.runtime import RuntimeFinding
    from rollbackkit.ops.runbooks import RunbookResult
    from rollbackkit.registry.mlflow_sync import AliasMove

PreflightVerdict = Literal["compatible", "adaptable", "incompatible", "skipped"]


def assignment_from_dict(data: dict[str, Any]) -> Assignment:
    """An :class:`Assignment` from its ``to_dict()`` (the ``timestamp`` it leaves out is 0)."""
    return Assignment(**known(Assignment, data))


@dataclass(frozen=True)
class Preflight:
    """A preflight verdict as deploy and rollback report it (``skipped`` for an automatic rollback)."""

    verdict: PreflightVerdict
    target: str | None = None
    consumer: str | None = None
    findings: list[Finding] = field(default_factory=list)
    adaptation: Adaptation | None = None
    parity: dict[str, Any] | None = None
    runtime: list[RuntimeFinding] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preflight:
        """From a ``PreflightReport.to_dict()`` (or ``{"verdict": "skipped"}``)."""
        from rollbackkit.bundle.compat import Adaptation, Finding
        from rollbackkit.bundle.runtime import RuntimeFinding

        adaptation, runtime = data.get("adaptation"), data.get("runtime")
        return cls(
            verdict=data["verdict"],
            target=data.get("target"),
            consumer=data.get("consumer"),
            findings=[Finding(**known(Finding, f)) for f in data.get("findings", [])],
            adaptation=Adaptation(**known(Adaptation, adaptation)) if adaptation is not None else None,
            parity=data.get("parity"),
            runtime=[RuntimeFinding(**known(RuntimeFinding, f)) for f in runtime] if runtime is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON (just the verdict when skipped)."""
        if self.verdict == "skipped":
            return {"verdict": "skipped"}
        out = {
            "target": self.target,
            "consumer": self.consumer,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "adaptation": self.adaptation.to_dict() if self.adaptation is not None else None,
            "parity": self.parity,
        }
        return out if self.runtime is None else {**out, "runtime": [f.to_dict() for f in self.runtime]}


@dataclass(frozen=True)
class Cancelled:
    """A running canary or shadow that a rollback stopped.

    Attributes:
        role: ``canary`` or ``shadow``.
        version: Its version.
        kept: True when the live version kept serving (the rollback only cancelled it).
    """

    role: Literal["canary", "shadow"]
    version: str
    kept: bool

    def line(self, live: str) -> str:
        """``Cancelled the shadow v1.4.0; v1.3.0 keeps all traffic`` (a canary's: ``v1.3.0 takes
        all traffic again``; ``live``: the version serving after)."""
        if self.kept:
            kept = "keeps all traffic" if self.role == "shadow" else "takes all traffic again"
            return f"Cancelled the {self.role} {self.version}; {live} {kept}"
        return f"Cancelled the {self.role} {self.version}; {live} takes all traffic"


@dataclass(frozen=True)
class AssignmentResult:
    """What deploy, rollback and promote did: the assignment recorded and how it got there.

    Attributes:
        via: The server URL that shifted traffic, or ``workspace`` (restored without a server).
        assignment: The assignment recorded (its tag names the change).
        status: The server's status after the shift (server only).
        preflight: The preflight report (deploy and rollback).
        shift_ms: How long the traffic shift took (server deploy and rollback).
        restored: The workspace directory the bundle was restored into (workspace only).
        source: The JSON it was read from, given back by :meth:`to_dict` whole (keys a newer
            server adds included); None when built here.
        previous: The version the change took traffic from: the live version before it (a
            canary's "rest"), or for a rollback the canary it cancelled; None when nothing
            served before or it is not known. Read from the assignment history, not part of
            the JSON.
        alias_sync: The MLflow alias this change moved (or failed to), when the environment
            syncs one (``import mlflow --sync-alias``); ``mlflow_alias`` in the JSON.
        cancelled: The canary or shadow a rollback stopped (read from the history, like
            ``previous``), or None.
        replicas: Whether the change reached every replica on a shared store (``replicas``
            in the JSON); None without a store.
        git_remote: The tags pushed to the project's shared git remote, or why not
            (``git_remote`` in the JSON); None without that remote.
    """

    via: str
    assignment: Assignment
    status: ServerStatus | None = None
    preflight: Preflight | None = None
    shift_ms: float | None = None
    restored: str | None = None
    source: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    previous: str | None = None
    alias_sync: AliasMove | None = None
    cancelled: Cancelled | None = None
    replicas: Convergence | None = None
    git_remote: GitRemote | None = None

    @property
    def converged(self) -> bool:
        """True unless a shared store's replicas do not all serve the change (yet, or any more:
        another replica's later change superseded it)."""
        reach, a = self.replicas, self.assignment
        return reach is None or (reach.converged and reach.holds(a.action, a.version))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssignmentResult:
        """From ``{"via": ..., **the admin API's answer}`` or the workspace path's dict."""
        return cls(
            via=data["via"],
            assignment=assignment_from_dict(data["assignment"]),
            status=ServerStatus.from_dict(data["status"]) if data.get("status") is not None else None,
            preflight=Preflight.from_dict(data["preflight"]) if data.get("preflight") is not None else None,
            shift_ms=data.get("shift_ms"),
            restored=data.get("restored"),
            source=data,
            replicas=Convergence.of(data.get("replicas")),
            git_remote=GitRemote.of(data.get("git_remote")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``deploy``, ``rollback`` and ``promote --json`` print."""
        if self.alias_sync is not None:
            return {**replace(self, alias_sync=None).to_dict(), "mlflow_alias": self.alias_sync.to_dict()}
        if self.source is not None:
            return dict(self.source)
        return without_none(
            {
                "via": self.via,
                "assignment": self.assignment.to_dict(),
                "status": self.status.to_dict() if self.status is not None else None,
                "preflight": self.preflight.to_dict() if self.preflight is not None else None,
                "shift_ms": self.shift_ms,
                "restored": self.restored,
                "replicas": self.replicas.to_dict() if self.replicas is not None else None,
                "git_remote": self.git_remote.to_dict() if self.git_remote is not None else None,
            }
        )


@dataclass(frozen=True)
class RollbackWithRunbook:
    """A rollback and the rollback runbook that followed it (``rollback --runbook``).

    Attributes:
        rollback: What the rollback did.
        runbook: The executed runbook: its record, status, verdict and run time.
    """

    rollback: AssignmentResult
    runbook: RunbookResult

    @property
    def ok(self) -> bool:
        """True when the runbook ran to its end (status ``ok``)."""
        return self.runbook.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The rollback's JSON with the runbook's under ``runbook``."""
        return {**self.rollback.to_dict(), "runbook": self.runbook.to_dict()}
