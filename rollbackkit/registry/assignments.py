"""Which version served where, when, and why: assignments as GTO stage tags.

Every assignment of a version to an environment is an annotated tag ``NAME#ENV#N`` on the
version's commit (GTO's stage-tag format, so ``gto show`` and ``gto history`` read it).
The message carries the action (deploy, canary, shadow, promote, rollback, auto-rollback),
reason, incident, actor, whether preflight was forced, a gate-report summary, and a
canary's or shadow's share and a stepped rollout's plan. History is replayed from the tags
(:func:`~rollbackkit.registry.serving_state.replay`); nothing is ever rewritten.

Two rules live here and nowhere else. :meth:`Deployments.state` says what serves an
environment (a :class:`Serving`: the live version and its assignment, a running canary or
shadow and its share, and the versions rolled back from; neither counts as what serves);
:func:`resolve` (``Registry.resolve("NAME#ENV")``), :meth:`Deployments.serving`, the
server's start-up, preflight's default consumer, the timeline panel and the runbooks
all read it. :meth:`Deployments.rollback_target` says where a rollback goes; the CLI, the admin
API, the watchdog, the runbook and the panel all apply it.

GTO orders events by tagger time, which has one-second resolution. To keep a deploy and a
rollback within the same second unambiguous, each new stage tag of a bundle gets a tagger
time strictly greater than every earlier one. During a burst the tag times may run a few
seconds ahead of the wall clock; the journal records the real times.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError, RollbackRefused, VersionNotFound
from rollbackkit.locking import repo_lock
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry import people
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Action, Assignment, Serving, plan_fields, replay
from rollbackkit.registry.tags import (
    assignment_message,
    assignment_meta,
    parse_stage_tag,
    stage_tag,
    versions_in,
)

__all__ = ["Action", "Assignment", "Deployments", "Serving", "replay", "require_known", "resolve"]


class Deployments:
    """Assignment history of one repository.

    Args:
        registry: The registry whose versions are assigned (a
            :class:`~rollbackkit.registry.store.Registry`, or any
            :class:`~rollbackkit.registry.repository.Repository`).
    """

    def __init__(self, registry: Repository) -> None:
        self.registry = registry

    def history(self, name: str, env: str | None = None) -> list[Assignment]:
        """Assignments of ``name`` (in ``env``, or all), oldest first."""
        validate_name(name)
        if env is not None:
            validate_name(env, "environment name")
        tags = self.registry.git.tags()
        by_commit = {v.commit: v.version for v in versions_in(tags, name)}
        out = []
        for tag in tags:
            stage = parse_stage_tag(tag.name)
            if stage is None or stage.name != name or (env is not None and stage.env != env):
                continue
            meta = assignment_meta(tag.message)
            out.append(
                Assignment(
                    name=name,
                    env=stage.env,
                    version=by_commit.get(tag.commit, "?"),
                    tag=tag.name,
                    time=datetime.fromtimestamp(tag.timestamp, UTC).isoformat(),
                    action=meta.get("action", "deploy"),
                    reason=meta.get("reason", ""),
                    incident=meta.get("incident", ""),
                    actor=meta.get("actor", tag.tagger),
                    forced=bool(meta.get("forced", False)),
                    gates=meta.get("gates", ""),
                    canary_percent=meta.get("canary_percent"),
                    number=stage.number,
                    timestamp=tag.timestamp,
                    **plan_fields(meta),
                )
            )
        return sorted(out, key=lambda a: (a.timestamp, a.number))

    def current(self, name: str, env: str) -> Assignment | None:
        """The latest assignment in ``env`` (None if nothing was ever assigned)."""
        history = self.history(name, env)
        return history[-1] if history else None

    def state(self, name: str, env: str) -> Serving:
        """What serves ``name`` in ``env`` now: the one definition every caller uses.

        The live version serves; a running canary does not count (it is ``canary``).
        """
        return replay(name, env, self.history(name, env))[-1]

    def states(self, name: str, env: str) -> list[tuple[Assignment, Serving]]:
        """Each assignment of ``name`` in ``env`` with the serving state right after it."""
        history = self.history(name, env)
        return list(zip(history, replay(name, env, history)[1:], strict=True))

    def serving(self, name: str, env: str) -> Assignment | None:
        """The assignment under which the live version serves (a running canary or shadow does not count)."""
        return self.state(name, env).live

    def rollback_target(self, name: str, env: str, to: str | None = None, *, flag: str = "--to VERSION") -> VersionInfo:
        """The one target rule every rollback applies (CLI, admin API, watchdog, runbook, panel).

        With a canary or a shadow running, the target is the live version (the canary or
        shadow is cancelled, and its version counts as rolled back from); ``to`` may name any
        other version but the canary or shadow itself. Otherwise it is ``to`` if given, else
        the most recent version that took all traffic here, differs from the live one and
        was not rolled back from since it was last deployed.

        Args:
            name: Bundle name.
            env: Environment.
            to: An explicit target version (a person's choice may be any registered version).
            flag: How the user names a target where they type it, for hints
                (``--to VERSION`` on the CLI, ``-p to_version=VERSION`` in a runbook).

        Raises:
            RollbackRefused: Nothing serves, nothing qualifies, or the rollback would not
                change what serves.
        """
        state = self.state(name, env)
        if state.live is None:
            raise RollbackRefused(f"Nothing serves {name} in {env}, so there is nothing to roll back.", "Deploy first.")
        live = state.live.version
        if to:
            info = self.registry.find(Reference.parse(f"{name}@{to}"))
            if state.canary is not None and info.version == state.canary.version:
                raise RollbackRefused(
                    f"{name}@{info.version} is the canary in {env}; rolling back to it changes nothing.",
                    "Promote it, or roll back without a target to cancel it.",
                )
            if state.shadow is not None and info.version == state.shadow.version:
                raise RollbackRefused(
                    f"{name}@{info.version} is the shadow in {env}; a rollback never makes a shadow live.",
                    "Promote it (promote --from-shadow), or roll back without a target to cancel it.",
                )
            if state.canary is None and state.shadow is None and info.version == live:
                raise RollbackRefused(
                    f"{name}@{info.version} already serves {env}; a rollback to it would change nothing.",
                    f"Name another version ({flag}).",
                )
            return info
        if state.canary is not None or state.shadow is not None:
            return self.registry.find(Reference(name=name, version=live))
        target = state.fallback
        if target is None:
            rejected = ", ".join(sorted(state.rolled_back_from)) or "none"
            raise RollbackRefused(
                f"{name} has no earlier version in {env} to roll back to: {live} serves, and no other version "
                f"that served there is eligible (rolled back from: {rejected}).",
                f"Name a version ({flag}), or deploy one.",
            )
        return self.registry.find(Reference(name=name, version=target))

    def assign(
        self,
        info: VersionInfo,
        env: str,
        action: Action,
        *,
        reason: str = "",
        incident: str = "",
        actor: str = "",
        forced: bool = False,
        gates: str = "",
        canary_percent: int | None = None,
        shadow_percent: int | None = None,
        steps: tuple[int, ...] | list[int] = (),
        bake_s: float | None = None,
    ) -> Assignment:
        """Record an assignment as a new stage tag (under the repository lock).

        ``canary_percent``: a canary's share; ``shadow_percent``: a shadow's share of
        mirrored requests; ``steps`` and ``bake_s``: a stepped rollout's plan, carried by
        each of its canary assignments (see :class:`Assignment`).
        """
        validate_name(env, "environment name")
        with repo_lock(self.registry.paths.lock_file):
            return self.assign_locked(
                info,
                env,
                action,
                reason=reason,
                incident=incident,
                actor=actor,
                forced=forced,
                gates=gates,
                canary_percent=canary_percent,
                shadow_percent=shadow_percent,
                steps=steps,
                bake_s=bake_s,
            )

    def assign_locked(
        self,
        info: VersionInfo,
        env: str,
        action: Action,
        *,
        reason: str = "",
        incident: str = "",
        actor: str = "",
        forced: bool = False,
        gates: str = "",
        canary_percent: int | None = None,
        shadow_percent: int | None = None,
        steps: tuple[int, ...] | list[int] = (),
        bake_s: float | None = None,
        tag: str | None = None,
    ) -> Assignment:
        """:meth:`assign` for a caller that already holds the repository lock.

        ``tag`` is a name reserved earlier with :meth:`next_tag` (under the same lock hold).
        """
        self.registry.journal().check_appendable()  # never a tag without its journal record
        tags = self.registry.git.tags()
        times = [t.timestamp for t in tags if (s := parse_stage_tag(t.name)) and s.name == info.name]
        stamp = max(int(time.time()), max(times, default=0) + 1)
        tag = tag or self.next_tag(info.name, env)
        meta: dict[str, Any] = {
            "action": action,
            "reason": reason,
            "incident": incident,
            "actor": actor or people.actor(self.registry.root),
            "forced": forced,
            "gates": gates,
            "canary_percent": canary_percent,
            "version": info.version,
        }
        plan = {"shadow_percent": shadow_percent, "steps": [int(s) for s in steps], "bake_s": bake_s}
        meta.update({k: v for k, v in plan.items() if v not in (None, [])})  # old readers: nothing new
        message = assignment_message(info.name, info.version, env, action, reason, meta)
        self.registry.git.create_tag(tag, info.commit, message, timestamp=stamp)
        stage = parse_stage_tag(tag)
        number = stage.number if stage else 0
        return Assignment(
            info.name,
            env,
            info.version,
            tag,
            datetime.fromtimestamp(stamp, UTC).isoformat(),
            action,
            reason,
            incident,
            meta["actor"],
            forced,
            gates,
            canary_percent,
            number,
            stamp,
            **plan_fields(meta),
        )

    def next_tag(self, name: str, env: str) -> str:
        """The name the next assignment of ``name`` will get (hold the repository lock)."""
        numbers = [s.number for t in self.registry.git.tags() if (s := parse_stage_tag(t.name)) and s.name == name]
        return stage_tag(name, env, max(numbers, default=0) + 1)


def resolve(repo: Repository, ref: str | Reference) -> VersionInfo:
    """Resolve ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#ENV`` to a version.

    ``NAME#ENV`` is what serves ENV by the one rule (:meth:`Deployments.state`): the live
    version, not a running canary.
    """
    ref = Reference.parse(ref) if isinstance(ref, str) else ref
    if ref.env is None:
        return repo.find(ref)
    versions = repo.registered_versions(ref.name)
    live = Deployments(repo).state(ref.name, ref.env).live
    if live is None:
        raise VersionNotFound(f"Nothing is assigned to {ref}.", "Deploy a version there first.")
    match = [v for v in versions if v.version == live.version]
    if not match:
        raise IntegrityError(
            f"{live.tag} points at a commit that registers no version.", "Run 'rollbackkit verify --all'."
        )
    return match[0]


def require_known(repo: Repository, name: str, env: str | None = None) -> None:
    """Refuse a bundle name that is not registered, or an environment ``name`` was never assigned to.

    Commands that read a name's history (``history``, ``status``, ``affected``, ...) call this
    first, so a typo is an error that lists the known names instead of an empty answer.

    Args:
        repo: The repository.
        name: A bundle name.
        env: An environment, or None to check only the name.

    Raises:
        InvalidName: ``name`` or ``env`` breaks the naming rules.
        VersionNotFound: No version of ``name`` is registered, or nothing of ``name`` was ever
            assigned to ``env``; the hint lists the known bundles or environments.
    """
    validate_name(name)
    if env is not None:
        validate_name(env, "environment name")
    tags = repo.git.tags()
    names = sorted({v.name for v in versions_in(tags)})
    if name not in names:
        known = ", ".join(names) if names else "none yet (rollbackkit register NAME ...)"
        raise VersionNotFound(f"No bundle named {name!r} is registered.", f"Known bundles: {known}.")
    if env is None:
        return
    envs = sorted({s.env for t in tags if (s := parse_stage_tag(t.name)) is not None and s.name == name})
    if env not in envs:
        known = ", ".join(envs) if envs else f"none yet (rollbackkit deploy {name}@VERSION --env {env})"
        raise VersionNotFound(f"{name} was never deployed to {env!r}.", f"Known environments: {known}.")
