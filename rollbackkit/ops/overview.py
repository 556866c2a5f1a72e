"""Overview: one environment at a glance, what ``rollbackkit status`` shows an on-call engineer.

What serves and since when, what served before and why it left, the canary's share, a
shadow and its mirror's counters, where a rollout stands (step, bake, why it is paused),
the latest gate report (of the live version, or of the canary or shadow under evaluation),
the prediction log's health and the server's address, the replicas on a shared store
(from the store itself when no server answers); from the history alone when no
server runs. Times stay ISO UTC strings here: the
face turns them into local time and "12 min ago".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rollbackkit.errors import ServerError, StoreError, UnknownAnswer
from rollbackkit.ops.other_hosts import placed, published_state, refresh, told
from rollbackkit.ops.replicas import Replicas, replicas
from rollbackkit.ops.situation import read_status
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Assignment, Deployments, Serving, replay, require_known
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import find_server
from rollbackkit.serving.rollout import Rollout
from rollbackkit.serving.status import GateStatus, LogStatus, ServerStatus, known

if TYPE_CHECKING:
    from rollbackkit.serving.mirrored import MirrorStatus


@dataclass(frozen=True)
class Departure:
    """The version that most recently stopped taking traffic, and the assignment that took it away.

    Attributes:
        version: The version that left.
        role: ``live`` (it took all other traffic) or ``canary``.
        percent: The canary's share when it left (None for a live version).
        served_since: When it started serving in that role (ISO UTC), if known.
        by: The assignment that replaced it: its ``action``, ``time``, ``actor``, ``reason``,
            ``incident`` and ``gates`` say why it left.
    """

    version: str
    role: Literal["live", "canary"]
    percent: int | None
    served_since: str | None
    by: Assignment


@dataclass(frozen=True)
class Behind:
    """Work after a traffic change that did not happen: an MLflow alias left behind, or a failed hook.

    Attributes:
        failures: Failures the server counted (``/status`` ``background``; 0 without a server).
        what: ``MLflow alias NAME not moved``, or ``work after a traffic change failed``.
        reason: The last failure's text.
        retry: The command that catches up (empty when there is none).
    """

    failures: int
    what: str
    reason: str
    retry: str = ""


@dataclass(frozen=True)
class Overview:
    """One environment at a glance (see :func:`overview`).

    Attributes:
        name: Bundle name.
        env: Environment.
        live: The version that takes all non-canary traffic (the server's live slot when a
            server answers, else the history's), or None.
        live_since: The assignment that began its current uninterrupted stint as the live
            version (its ``time`` is "since when"; a rollback that only cancelled a canary
            does not restart it), or None.
        canary: The running canary's assignment, or None.
        canary_percent: The canary's share of traffic in percent, or None.
        previous: The version that last stopped taking traffic and why, or None.
        gates: The latest gate report when it describes the live version, else None.
        other_gates: The server's latest gate report when it describes another version
            (e.g. the one rolled back from), else None.
        log: The prediction log writer's health, None without a server (or under ``--no-log``).
        server: The URL of the server that answered, or None.
        server_error: Why a server that holds the environment's lock did not answer, or None.
        status: The server's full ``/status``, or None.
        assignments: How many assignments the history holds.
        behind: An MLflow alias the last move left behind (the journal) or the server's failed
            background work, else None.
        shadow: The running shadow's assignment, or None.
        shadow_percent: The share of live requests the shadow scores, or None.
        mirror: The server's mirror counters (mirrored, dropped, failed), or None.
        rollout: Where the version under evaluation stands in its rollout (step, bake, why it
            is paused), from the server's latest gate report, or None.
        candidate_gates: The latest gate report when it describes the running canary or
            shadow, else None.
        replicas: The environment's replicas on a shared store and the watchdog's leader
            (from a server, else from the store), or None without a store.
        unfetched: Why the model's tags could not be fetched from ``origin`` (the history shown
            is this clone's, maybe behind other hosts'), or None.
    """

    name: str
    env: str
    live: str | None
    live_since: Assignment | None
    canary: Assignment | None
    canary_percent: int | None
    previous: Departure | None
    gates: GateStatus | None
    other_gates: GateStatus | None
    log: LogStatus | None
    server: str | None
    server_error: str | None
    status: ServerStatus | None
    assignments: int
    behind: Behind | None = None
    shadow: Assignment | None = None
    shadow_percent: int | None = None
    mirror: MirrorStatus | None = None
    rollout: Rollout | None = None
    candidate_gates: GateStatus | None = None
    replicas: Replicas | None = None
    unfetched: str | None = None


def overview(repo: str | Path, name: str, env: str, *, server: str | None = None) -> Overview:
    """Where ``name`` stands in ``env``: from its server when one answers, else from the history.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        server: The URL of the server to ask (default: the running one for ``env``, if any).

    Returns:
        :class:`Overview`: live version and since when, the previous version and why it left,
        the canary's share, the live version's latest gate report, log health, server address.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        ServerError: ``server`` was given and does not answer, or a running server's record
            is unreadable or names a URL the admin token must not go to.
        UnknownAnswer: A server answered in a shape this client does not know.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    unfetched = refresh(registry, validate_name(name))
    require_known(registry, name, env)
    history = Deployments(registry).history(validate_name(name), validate_name(env, "environment name"))
    states = replay(name, env, history)
    state = states[-1]
    status, server_error, store_down = None, None, None
    try:
        url = server or find_server(registry.paths, name, env)
    except StoreError as exc:  # no server here and the store that knows the replicas is away
        url, server_error, store_down = None, exc.message, exc
    if url is not None:
        try:
            status = read_status(url)
        except UnknownAnswer:
            raise
        except ServerError as exc:
            if server is not None:
                raise
            url, server_error = None, exc.message
    live = state.version
    canary, canary_percent = state.canary, state.canary_percent
    if status is not None:  # what the server serves wins over what the history says it should
        live = status.live.version if status.live else None
        tags = {a.tag: a for a in history}
        canary = told(status, tags.get(status.canary.deployment)) if status.canary else None
        canary_percent = status.canary.percent if status.canary else None
    shadow, shadow_percent = state.shadow, state.shadow.shadow_percent if state.shadow else None
    if status is not None:
        shadow = {a.tag: a for a in history}.get(status.shadow.deployment) if status.shadow else None
        shadow_percent = status.shadow.percent if status.shadow else None
    routed = published_state(registry, name, env) if status is None and server_error is None else None
    if routed is not None:  # no server answers: what the store says every replica must serve wins over git
        live = routed.desired.live.version if routed.desired.live is not None else None
        tags, at = {a.tag: a for a in history}, routed.changed_at.isoformat()
        canary = placed(tags, name, env, routed.desired.canary, "canary", at)
        canary_percent = routed.desired.canary.percent if routed.desired.canary is not None else None
        shadow = placed(tags, name, env, routed.desired.shadow, "shadow", at)
        shadow_percent = routed.desired.shadow.percent if routed.desired.shadow is not None else None
    live_since = stint(history, states, live, "live") if live is not None else None
    report = status.gates if status is not None else None
    mine = report is not None and live is not None and report.version in (live, f"{name}@{live}")
    running = {v for a in (canary, shadow) if a is not None for v in (a.version, f"{name}@{a.version}")}
    return Overview(
        name=name,
        env=env,
        live=live,
        live_since=live_since,
        canary=canary,
        canary_percent=canary_percent,
        previous=last_departure(history, states),
        gates=report if mine else None,
        other_gates=report if not mine else None,
        log=status.log if status is not None else None,
        server=url,
        server_error=server_error,
        status=status,
        assignments=len(history),
        behind=behind(registry, name, env, status),
        shadow=shadow,
        shadow_percent=shadow_percent,
        mirror=mirror(status),
        rollout=report.rollout if report is not None else None,
        candidate_gates=report if report is not None and not mine and report.version in running else None,
        replicas=replicas(repo, name, env, status, store_down=store_down),
        unfetched=unfetched,
    )


def mirror(status: ServerStatus | None) -> MirrorStatus | None:
    """The server's shadow mirror counters (``mirror`` in ``/status``, also on its ``shadow``
    slot), or None when the server has no mirror."""
    source = (status.source or {}) if status is not None else {}
    counters = source.get("mirror")
    if not isinstance(counters, dict):
        counters = source.get("shadow")
    if not isinstance(counters, dict) or "mirrored" not in counters:
        return None
    from rollbackkit.serving.mirrored import MirrorStatus  # the serving side's mirror, loaded only with one

    fields = {"mirrored": 0, "dropped": 0, "failed": 0, "queued": 0, "last_error": None}
    return MirrorStatus(**{**fields, **known(MirrorStatus, counters)})


def behind(registry: Repository, name: str, env: str, status: ServerStatus | None) -> Behind | None:
    """The MLflow alias ``env`` syncs when its last move failed (journal ``mlflow-alias``), else
    the server's failed background work (unless it was an alias move a later one caught up with), else None."""
    background = (status.source or {}).get("background") if status is not None else None
    counted = background if isinstance(background, dict) else {}
    count = counted.get("failures")
    failures = count if isinstance(count, int) else 0
    moves = [
        e
        for e in Journal(registry.paths.journal).entries()
        if e.get("event") == "mlflow-alias" and e.get("name") == name and e.get("env") == env
    ]
    if moves and moves[-1].get("ok") is False:
        last = moves[-1]
        return Behind(failures, f"MLflow alias {last.get('alias')} not moved", str(last.get("error") or ""),
                      f"rollbackkit mlflow sync {name} --env {env}")  # fmt: skip
    reason = str(counted.get("last_failure") or "")
    if failures and not (moves and "mlflow sync" in reason):  # an alias failure a later move caught up with
        return Behind(failures, "work after a traffic change failed", reason)
    return None


def last_departure(history: list[Assignment], states: list[Serving]) -> Departure | None:
    """The version that most recently stopped taking traffic (live or canary) and what replaced it.

    ``states`` is ``replay(name, env, history)``: the state before each assignment, then after.
    When one assignment takes traffic from both (a rollback past a canary), the live one is told.
    """
    for i in range(len(history) - 1, -1, -1):
        before, after = states[i], states[i + 1]
        staying = {a.version for a in (after.live, after.canary) if a is not None}
        for role, gone in (("live", before.live), ("canary", before.canary)):
            if gone is not None and gone.version not in staying:
                return Departure(
                    version=gone.version,
                    role="live" if role == "live" else "canary",
                    percent=gone.canary_percent if role == "canary" else None,
                    served_since=getattr(stint(history[:i], states[: i + 1], gone.version, role), "time", None),
                    by=history[i],
                )
    return None


def stint(history: list[Assignment], states: list[Serving], version: str, role: str) -> Assignment | None:
    """The assignment that began ``version``'s last uninterrupted stint in ``role`` at the end of
    ``history`` (``states`` is its replay), or None when it does not hold ``role`` there."""
    start = None
    for i in range(len(history) - 1, -1, -1):
        held = states[i + 1].live if role == "live" else states[i + 1].canary
        if held is None or held.version != version:
            break
        start = history[i]
    return start
