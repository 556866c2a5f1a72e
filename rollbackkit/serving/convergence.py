"""Whether every replica of an environment serves a published generation (an operation's ``replicas``).

Every replica that is not gone is waited for: a fresh one until it serves the generation or
says it cannot; a stale one (no heartbeat for :data:`~rollbackkit.serving.postgres.replicas.STALE_AFTER`
seconds: cut off from the store, maybe still behind the balancer) is named as lagging — it may
still serve what it served — until it has been silent for
:data:`~rollbackkit.serving.postgres.replicas.GONE_AFTER` seconds (by then it has drained itself).
A replica that stopped cleanly has deleted its row and is not waited for. When another
replica published after the generation waited for, ``superseded_by`` names that change: the
fleet serves it, not this operation's state.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollbackkit.errors import StoreError
from rollbackkit.serving.postgres.replicas import ReplicaRecord


@dataclass(frozen=True)
class Convergence:
    """Whether every replica not gone serves ``generation`` (``lagging``: the ones that do not, and why)."""

    generation: int
    converged: bool
    waited_ms: float
    replicas: list[ReplicaRecord]
    lagging: dict[str, str] = field(default_factory=dict)
    superseded_by: Superseding | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (an operation's ``replicas``)."""
        superseded = self.superseded_by
        return {
            "generation": self.generation,
            "converged": self.converged,
            "waited_ms": self.waited_ms,
            "replicas": [r.to_dict() for r in self.replicas],
            "lagging": dict(self.lagging),
            "superseded_by": None if superseded is None else superseded.to_dict(),
        }


@dataclass(frozen=True)
class Superseding:
    """A publication newer than the one waited for: the fleet serves another replica's change."""

    generation: int
    action: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        """``{generation, action, by}``."""
        return {"generation": self.generation, "action": self.action, "by": self.by}


def lag_reason(record: ReplicaRecord) -> str:
    """Why ``record`` does not serve the generation waited for (one line)."""
    if not record.fresh:
        live = record.serving.get("live")
        version = live.get("version") if isinstance(live, dict) else None
        serves = f"may still serve {version}" if version else "may still serve an older state"
        return f"no heartbeat for {record.silent_s or 0:.0f} s (cut off from the store?): {serves}"
    return record.error or f"serves generation {record.generation}"


def wait_converged(
    listed: Callable[[], list[ReplicaRecord]],
    generation: int,
    timeout: float,
    *,
    me: str,
    newest: Callable[[], Superseding | None] | None = None,
) -> Convergence:
    """Wait up to ``timeout`` s until every replica of ``listed()`` not gone serves ``generation``.

    The wait ends early once every replica behind has failed to load it or is stale.
    ``me`` names the asking replica (lagging when the store does not answer it). ``newest()``
    names a publication after ``generation`` (read once the wait ends: ``superseded_by``).
    """
    started = time.monotonic()
    deadline = started + timeout
    pause, records, lagging = 0.002, [], {}
    while True:
        try:
            records = [r for r in listed() if not r.gone]
        except StoreError as exc:
            lagging = {me: f"the store is unreachable: {exc.message}"}
        else:
            behind = [r for r in records if (r.generation or 0) < generation]
            lagging = {r.replica: lag_reason(r) for r in behind}
            done = [r for r in behind if not r.fresh or (r.error and int(r.serving.get("wanted") or 0) >= generation)]
            if len(done) == len(behind):
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(0.05, pause * 1.5)
    waited = round((time.monotonic() - started) * 1000, 3)
    superseded = None
    if newest is not None:
        with contextlib.suppress(StoreError):
            superseded = newest()
    return Convergence(generation, not lagging, waited, records, lagging, superseded)
