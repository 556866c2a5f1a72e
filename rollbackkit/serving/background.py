"""Work that follows a recorded traffic change: counted when it fails, never raised into serving.

An MLflow alias moved after a deploy, promote or rollback, or the after-rollback hook (the
runbook) of an automatic rollback, happens after the change is recorded: the change
stands whatever becomes of it. A failure is counted and shown as ``background`` in
``GET /status``, so it is never silent. A log step that failed after a shift (a quarantine,
a row promotion: both idempotent) is also kept as ``pending`` and retried by the replica's
heartbeat and watchdog threads (:meth:`Background.retry`) until it succeeds.

The gate history's losses have their own count by reason (:data:`HISTORY_DROPS`,
``gate_history_dropped`` in ``/status``, ``rollbackkit_gate_history_dropped_total`` in
``/metrics``): a repeat trimmed while the writer is behind is harmless and no failure; the
others are also background failures (:class:`~rollbackkit.serving.gate_history.GateRecorder`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

HistoryDrop = Literal["repeat", "change", "write_failed", "not_built"]
HISTORY_DROPS: tuple[HistoryDrop, ...] = ("repeat", "change", "write_failed", "not_built")
"""Why a watchdog evaluation did not reach the gate history: ``repeat`` (a repeat of an unchanged
run, the same decision and each gate's status and failure streak, trimmed while 256 waited for the
writer: its run's row counts one fewer, nothing else is lost), ``change`` (a change of run dropped
past the waiting changes' memory bound),
``write_failed`` (the log or store refused the write), ``not_built`` (its record raised)."""

AssignmentHook = Callable[[dict[str, Any]], dict[str, Any] | None]

RETRY_EVERY = 1.0
"""Seconds between two rounds of retrying pending steps."""


@dataclass
class Pending:
    """A step that failed after a recorded shift, retried until it succeeds (or is no longer wanted)."""

    what: str
    step: Callable[[], object]
    wanted: Callable[[], bool]
    last_error: str = ""


class Background:
    """Failures of the work after traffic changes, and the order that work runs in."""

    def __init__(self) -> None:
        self.failures = 0
        self.last_failure: str | None = None
        self.order = threading.Lock()  # taken before the operation lock is let go: hooks run in change order
        self.pending: dict[str, Pending] = {}
        self.history_dropped: dict[HistoryDrop, int] = dict.fromkeys(HISTORY_DROPS, 0)
        """Watchdog evaluations that did not reach the gate history, by reason (:data:`HISTORY_DROPS`)."""
        self._retried = 0.0

    def failed(self, error: str) -> None:
        """Count one failure (its text kept on one line, at most 500 characters)."""
        self.failures += 1
        self.last_failure = " ".join(error.split())[:500]

    def history_drop(self, reason: HistoryDrop) -> None:
        """Count one evaluation the gate history lost, by ``reason`` (the caller counts a failure apart)."""
        self.history_dropped[reason] += 1

    def status(self) -> dict[str, Any]:
        """``{"failures": N, "last_failure": text or None, "pending": [what, ...], "gate_history_dropped":
        {reason: N}}`` for ``GET /status``."""
        return {
            "failures": self.failures,
            "last_failure": self.last_failure,
            "pending": list(self.pending),
            "gate_history_dropped": dict(self.history_dropped),
        }

    def retry_later(self, what: str, step: Callable[[], object], wanted: Callable[[], bool]) -> None:
        """Keep ``step`` (idempotent) to run again by :meth:`retry` while ``wanted()`` says so."""
        self.pending[what] = Pending(what, step, wanted)

    def retry(self, lock: threading.Lock) -> None:
        """Run each pending step once more, holding ``lock`` (the operation lock; skipped while an
        operation holds it), at most every :data:`RETRY_EVERY` seconds; a success, or a step no
        longer wanted, leaves ``pending``. Never raises (the last error stays with the step)."""
        if not self.pending or time.monotonic() - self._retried < RETRY_EVERY or not lock.acquire(blocking=False):
            return
        try:
            self._retried = time.monotonic()
            for what, pending in list(self.pending.items()):
                try:
                    if pending.wanted():
                        pending.step()
                except Exception as exc:  # still failing: kept, tried again next round
                    pending.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
                    continue
                del self.pending[what]
        finally:
            lock.release()

    def synced(self, answer: dict[str, Any], hook: AssignmentHook | None) -> dict[str, Any]:
        """``answer`` with ``hook``'s result as ``mlflow_alias`` (the caller holds :attr:`order`).

        A hook that raises or reports ``ok`` false is counted; the answer is returned either way.
        """
        if hook is None:
            return answer
        try:
            moved = hook(answer)
        except Exception as exc:  # the change is recorded: it stands
            self.failed(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}")
            return answer
        if moved is not None and not moved.get("ok", True):
            self.failed(f"MLflow alias not moved: {moved.get('error', '')} Retry: {moved.get('retry', '')}")
        return {**answer, "mlflow_alias": moved}
