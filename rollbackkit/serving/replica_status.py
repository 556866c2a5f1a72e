"""One replica of an environment on a shared store, as ``/status`` and ``rollbackkit status`` show it.

Read from the ``replicas`` table (:meth:`ReplicaStatus.of`) or from a server's ``/status``
(:meth:`ReplicaStatus.from_dict`); backend-free, like :mod:`rollbackkit.serving.status`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica of an environment on a shared store, as its heartbeat row says.

    Attributes:
        replica: Its id (``serve --replica``).
        host: The host it runs on.
        url: Where it listens.
        pid: Its process id.
        serving: What it serves, by role (``live``, ``canary``, ``shadow``, ``standby``:
            ``{version, tag, percent}`` or None).
        generation: The routing generation it has adopted.
        last_switch: When it last switched traffic (ISO UTC).
        heartbeat: Its last heartbeat (ISO UTC).
        heartbeat_age_s: Seconds since that heartbeat when the list was read.
        leader: Whether its watchdog leads (evaluates the gates for every replica).
        stale: No heartbeat for a while: gone, or cut off from the store (never waited for).
        error: Why it cannot follow the environment (a version it cannot load), or None.
    """

    replica: str
    host: str | None
    url: str | None
    pid: int | None
    serving: dict[str, Any]
    generation: int | None
    last_switch: str | None
    heartbeat: str | None
    heartbeat_age_s: float | None
    leader: bool
    stale: bool
    error: str | None

    @classmethod
    def of(cls, record: Any, *, leader: str | None, now: datetime | None = None) -> ReplicaStatus:
        """From a ``ReplicaRecord`` (the ``replicas`` table), ``leader`` naming the watchdog's leader."""
        beat: datetime | None = record.heartbeat
        age = ((now or datetime.now(UTC)) - beat).total_seconds() if beat is not None else None
        switched: datetime | None = record.last_switch
        return cls(
            replica=record.replica,
            host=record.host,
            url=record.url,
            pid=record.pid,
            serving=dict(record.serving or {}),
            generation=record.generation,
            last_switch=switched.isoformat() if switched is not None else None,
            heartbeat=beat.isoformat() if beat is not None else None,
            heartbeat_age_s=round(max(0.0, age), 3) if age is not None else None,
            leader=leader is not None and record.replica == leader,
            stale=not record.fresh,
            error=record.error,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplicaStatus:
        """From an entry of ``replicas`` in ``GET /status`` (keys a newer server adds are dropped)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def listed(cls, said: Any) -> list[ReplicaStatus] | None:
        """``replicas`` in ``/status``: each replica's row (None: no store, or it did not answer)."""
        return [cls.from_dict(r) for r in said] if isinstance(said, list) else None

    def to_dict(self) -> dict[str, Any]:
        """The replica's JSON (every key, None included)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def role(self, role: str) -> tuple[str, int | None] | None:
        """``(version, percent)`` of what it serves in ``role``, or None."""
        placed = self.serving.get(role)
        if not isinstance(placed, dict) or not placed.get("version"):
            return None
        percent = placed.get("percent")
        return str(placed["version"]), percent if isinstance(percent, int) else None
