"""Work that follows a recorded traffic change: counted when it fails, never raised into serving.

An MLflow alias moved after a deploy, promote or rollback, or the after-rollback hook (the
runbook) of an automatic rollback, happens after the change is recorded: the change
stands whatever becomes of it. A failure is counted and shown as ``background`` in
``GET /status``, so it is never silent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

AssignmentHook = Callable[[dict[str, Any]], dict[str, Any] | None]


class Background:
    """Failures of the work after traffic changes, and the order that work runs in."""

    def __init__(self) -> None:
        self.failures = 0
        self.last_failure: str | None = None
        self.order = threading.Lock()  # taken before the operation lock is let go: hooks run in change order

    def failed(self, error: str) -> None:
        """Count one failure (its text kept on one line, at most 500 characters)."""
        self.failures += 1
        self.last_failure = " ".join(error.split())[:500]

    def status(self) -> dict[str, Any]:
        """``{"failures": N, "last_failure": text or None}`` for ``GET /status``."""
        return {"failures": self.failures, "last_failure": self.last_failure}

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
