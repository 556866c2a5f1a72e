"""What ``GET /analysis`` and ``POST /analysis/flagger`` answer (:class:`Verdict`) and read (:class:`FlaggerPayload`).

:mod:`~rollbackkit.serving.verdict` judges; this module holds the shapes and the words: which
decisions pass or fail, and the status Flagger reads (:func:`flagger_status`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_args

from pydantic import ConfigDict, Field

from rollbackkit.analysis.gateresult import Decision
from rollbackkit.serving.bodies import Body

DECISIONS: tuple[str, ...] = get_args(Decision)
"""What ``decision`` can be: ``pass`` (passed), ``rollback`` (failed), ``warn`` and ``inconclusive`` (wait)."""
PASSED = ("pass",)
FAILED = ("rollback",)
ROLLED_BACK = "rolled-back"
"""The ``role`` of a version a rollback took traffic from (its verdict: ``rollback``, ``source: "history"``)."""


class StillEvaluating(Exception):
    """Another caller's evaluation of the same deployment did not finish within :data:`WAIT_S` (a 503)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class FlaggerPayload(Body):
    """What Flagger POSTs to a webhook; ``metadata.version`` picks the version (default: the canary, else live).

    Fields Flagger may add later are ignored (a newer Flagger must not fail every check).
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    name: str
    namespace: str
    phase: str
    checksum: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class GateVerdict:
    """One gate: its status, the value observed, the bounds it is held to, and a plain-words line."""

    name: str
    kind: str
    status: str
    value: float | None
    threshold: dict[str, float]
    message: str


@dataclass(frozen=True)
class Verdict:
    """A version's gate decision (``pass``, ``warn``, ``inconclusive`` or ``rollback``)."""

    model: str
    env: str
    version: str
    role: str
    deployment: str
    decision: str
    reason: str
    n: int
    evaluated_at: str
    source: str
    gates: tuple[GateVerdict, ...]

    @property
    def passed(self) -> bool:
        """The version may go on: its gates passed (a warning holds it, as the watchdog holds it)."""
        return self.decision in PASSED

    @property
    def failed(self) -> bool:
        """A gate failed: the version should be rolled back."""
        return self.decision in FAILED

    @property
    def inconclusive(self) -> bool:
        """Wait: the data does not decide yet (no traffic, too few rows or labels), or a warn-severity gate failed."""
        return not self.passed and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer: the fields, ``passed``/``failed``/``inconclusive`` and each gate."""
        said = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gates"}
        flags = {"passed": self.passed, "failed": self.failed, "inconclusive": self.inconclusive}
        return {**said, **flags, "gates": [asdict(g) for g in self.gates]}


def flagger_status(verdict: Verdict) -> int:
    """200 when the version passed, else 412 (Flagger counts any status over 202 as a failed check)."""
    return 200 if verdict.passed else 412
