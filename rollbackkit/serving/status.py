"""What a server reports, typed: its slots, its prediction-log writer, its latest gate report.

``ServerStatus`` is ``GET /status`` (what ``rollbackkit status`` prints; on a shared store
with each replica as a :class:`~rollbackkit.serving.replica_status.ReplicaStatus`); ``GateStatus`` is a
gate report wherever it comes from (a server's status, ``gates check``, the log), or why
there is none yet. ``from_dict`` reads the JSON; ``to_dict`` gives it back key for key and in
the same order. Keys a server sends only sometimes are None here and left out of ``to_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from rollbackkit.analysis.gates import GateResult
from rollbackkit.cards import Card, HasCard
from rollbackkit.serving.notify_health import NotifyHealth
from rollbackkit.serving.replica_status import ReplicaStatus
from rollbackkit.serving.rollout import Rollout
from rollbackkit.serving.traffic_event import CHANGES as CHANGES  # importable here as before
from rollbackkit.serving.traffic_event import TrafficEvent as TrafficEvent

GateDecision = Literal["rollback", "warn", "inconclusive", "pass", "insufficient"]
"""``inconclusive``: gates lacked traffic, labels or a supported difference (the rollout
pauses); ``insufficient``: nothing was evaluated yet (``reason`` says why)."""


def known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that dataclass ``cls`` has fields for.

    A newer server may add keys; this client reads what it knows and drops the rest, so a
    server upgraded first does not break the CLI. A key it needs and lacks still fails.
    """
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def without_none(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the keys whose value is None (keys a server sends only sometimes)."""
    return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class GateStatus(HasCard):
    """A gate report, or why there is none yet (``decision`` ``insufficient`` and ``reason``).

    Attributes:
        decision: ``rollback``, ``warn``, ``inconclusive``, ``pass``; ``insufficient`` with a
            ``reason`` when nothing was evaluated.
        version: The version evaluated.
        slot: The server slot it serves from (a server's report only).
        n: Rows in the window.
        gates: Each gate's result (None when nothing was evaluated).
        reason: Why there is no report.
        rollback: Why a failed gate moved no traffic (a server's report only).
        rollout: Where the version under evaluation stands (step, bake), a server's report only.
        paused: Why the rollout waits (no traffic, too few labels...), a server's report only.
        promoted: The assignment tag that ended the rollout (its last step promoted, or a full
            deploy's bake completed) until the promoted version is next evaluated.
        watchdog_errors: Evaluations and gates that raised since the server started (None:
            a server older than the count).
        last_watchdog_error: The latest of them, in one line.
    """

    decision: GateDecision
    version: str | None = None
    slot: str | None = None
    n: int | None = None
    gates: list[GateResult] | None = None
    reason: str | None = None
    rollback: str | None = None
    rollout: Rollout | None = None
    paused: str | None = None
    promoted: str | None = None
    watchdog_errors: int | None = None
    last_watchdog_error: str | None = None

    @property
    def failed(self) -> list[GateResult]:
        """Gates that failed."""
        return [g for g in self.gates or [] if g.status == "fail"]

    def card(self) -> Card:
        """Its card (a notebook cell's last expression): the decision, each gate in words, or why none."""
        from rollbackkit.analysis.card_views import gate_status_card

        return gate_status_card(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateStatus:
        """From a ``GateReport.to_dict()``, a server's ``gates`` in ``/status``, or an insufficient note."""
        gates = data.get("gates")
        return cls(
            decision=data["decision"],
            version=data.get("version"),
            slot=data.get("slot"),
            n=data.get("n"),
            gates=[GateResult(**known(GateResult, g)) for g in gates] if gates is not None else None,
            reason=data.get("reason"),
            rollback=data.get("rollback"),
            rollout=Rollout.from_dict(data["rollout"]) if data.get("rollout") is not None else None,
            paused=data.get("paused"),
            promoted=data.get("promoted"),
            watchdog_errors=data.get("watchdog_errors"),
            last_watchdog_error=data.get("last_watchdog_error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON (the shape of ``rollbackkit gates check --json``)."""
        return without_none(
            {
                "version": self.version,
                "slot": self.slot,
                "n": self.n,
                "decision": self.decision,
                "gates": [g.to_dict() for g in self.gates] if self.gates is not None else None,
                "reason": self.reason,
                "rollback": self.rollback,
                "rollout": self.rollout.to_dict() if self.rollout is not None else None,
                "paused": self.paused,
                "promoted": self.promoted,
                "watchdog_errors": self.watchdog_errors,
                "last_watchdog_error": self.last_watchdog_error,
            }
        )


@dataclass(frozen=True)
class SlotStatus:
    """One server slot that holds a version (``percent`` for the canary and the shadow only).

    A shadow's slot also carries its mirror's counters since the server started: requests
    ``mirrored`` (scored and logged), ``dropped`` (the mirror queue was full) and ``failed``.
    """

    version: str
    bundle_id: str
    slot: Literal["blue", "green"]
    deployment: str
    percent: int | None = None
    client_errors: int | None = None
    runtime: list[str] | None = None  # major-version differences from the runtime it was registered with
    mirrored: int | None = None
    dropped: int | None = None
    failed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotStatus:
        """From a slot of ``GET /status``."""
        return cls(**known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """The slot's JSON."""
        return without_none(
            {
                "version": self.version,
                "bundle_id": self.bundle_id,
                "slot": self.slot,
                "deployment": self.deployment,
                "percent": self.percent,
                "client_errors": self.client_errors,
                "runtime": self.runtime,
                "mirrored": self.mirrored,
                "dropped": self.dropped,
                "failed": self.failed,
            }
        )


@dataclass(frozen=True)
class LogStatus:
    """The prediction log writer's health (the process fields when it runs in its own process;
    ``buffered`` rows and their ``buffered_bytes`` in memory, ``reachable``, ``reconnects`` and
    ``store`` when it writes to a shared store, whose ``dropped`` counts rows refused because the
    buffer was full)."""

    write_errors: int
    last_write_error: str | None
    unwritten: int
    sink_errors: int
    process: int | None = None
    alive: bool | None = None
    restarts: int | None = None
    dropped: int | None = None
    buffered: int | None = None
    buffered_bytes: int | None = None
    reachable: bool | None = None
    reconnects: int | None = None
    store: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogStatus:
        """From the ``log`` of ``GET /status``."""
        return cls(**known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """The writer's JSON."""
        process = {"process": self.process, "alive": self.alive, "restarts": self.restarts, "dropped": self.dropped}
        store = {
            "buffered": self.buffered,
            "buffered_bytes": self.buffered_bytes,
            "reachable": self.reachable,
            "reconnects": self.reconnects,
        }
        return {
            **without_none(process),
            "write_errors": self.write_errors,
            "last_write_error": self.last_write_error,
            "unwritten": self.unwritten,
            "sink_errors": self.sink_errors,
            **without_none({**store, "store": self.store}),
        }


@dataclass(frozen=True)
class ServerStatus:
    """A server's ``GET /status``: its slots, the split, the latest gate report, the log writer.

    Attributes:
        name: Bundle name.
        env: Environment.
        live: The slot taking all non-canary traffic, or None.
        standby: The warm previous version, or None.
        canary: The canary slot with its ``percent``, or None.
        since: When traffic last moved (ISO time).
        generation: Counts traffic moves.
        gates: The latest gate report, None before the first evaluation.
        log: The log writer's health, None under ``serve --no-log``.
        refused: Requests refused as bad or unauthorised, by kind (over HTTP only).
        shadow: The shadow slot with its ``percent`` (the share of requests it mirrors), or None.
        replica: This server's replica id (None: no shared store).
        replicas: Every replica of the environment (None: no shared store, or it did not answer).
        watchdog_leader: The replica whose watchdog evaluates the gates (None: no store, or nobody yet).
        store: The shared store, password redacted (None: no store).
        notifications: The notifier's health (None: no ``notify:`` configured).
        source: The JSON it was read from, given back by :meth:`to_dict` whole, keys this
            client does not know included (``rollbackkit status --json`` shows what the
            server said); None when built here.
    """

    name: str
    env: str
    live: SlotStatus | None
    standby: SlotStatus | None
    canary: SlotStatus | None
    since: str
    generation: int
    gates: GateStatus | None
    log: LogStatus | None
    refused: dict[str, int] | None = None
    shadow: SlotStatus | None = None
    replica: str | None = None
    replicas: list[ReplicaStatus] | None = None
    watchdog_leader: str | None = None
    store: str | None = None
    notifications: NotifyHealth | None = None
    source: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerStatus:
        """From ``GET /status`` (or ``ServingEnvironment.status()``)."""

        def slot(key: str) -> SlotStatus | None:
            return SlotStatus.from_dict(data[key]) if data.get(key) is not None else None

        return cls(
            name=data["name"],
            env=data["env"],
            live=slot("live"),
            standby=slot("standby"),
            canary=slot("canary"),
            since=data["since"],
            generation=data["generation"],
            gates=GateStatus.from_dict(data["gates"]) if data.get("gates") is not None else None,
            log=LogStatus.from_dict(data["log"]) if data.get("log") is not None else None,
            refused=data.get("refused"),
            shadow=slot("shadow"),
            replica=_replica_id(data.get("replica")),
            replicas=[ReplicaStatus.from_dict(r) for r in data["replicas"]]
            if data.get("replicas") is not None
            else None,
            watchdog_leader=(data.get("watchdog") or {}).get("leader"),
            store=data.get("store"),
            notifications=NotifyHealth.from_dict(data["notifications"])
            if isinstance(data.get("notifications"), dict)
            else None,
            source=data,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /status`` (what ``rollbackkit status`` prints)."""
        if self.source is not None:
            return dict(self.source)
        out: dict[str, Any] = {
            "name": self.name,
            "env": self.env,
            **{
                role: s.to_dict() if s is not None else None
                for role, s in (("live", self.live), ("standby", self.standby), ("canary", self.canary))
            },
            **({"shadow": self.shadow.to_dict()} if self.shadow is not None else {}),
            "since": self.since,
            "generation": self.generation,
            "gates": self.gates.to_dict() if self.gates is not None else None,
            "log": self.log.to_dict() if self.log is not None else None,
        }
        replicas = [r.to_dict() for r in self.replicas] if self.replicas is not None else None
        store: dict[str, Any] = {"replica": self.replica, "replicas": replicas, "store": self.store}
        if self.watchdog_leader is not None:
            store["watchdog"] = {"leader": self.watchdog_leader}
        out |= without_none(store)
        return {**out, "refused": self.refused} if self.refused is not None else out


def _replica_id(said: Any) -> str | None:
    """The replica id in ``/status``'s ``replica`` (the sync's status object, or the id itself)."""
    if isinstance(said, dict):
        said = said.get("replica")
    return said if isinstance(said, str) else None
