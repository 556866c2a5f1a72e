"""Which version served where, when, and why: assignments as GTO stage tags.

Every assignment of a version to an environment is an annotated tag ``NAME#ENV#N`` on the
version's commit (GTO's stage-tag format, so ``gto show`` and ``gto history`` read it).
The message carries the action (deploy, canary, promote, rollback, auto-rollback), reason,
incident, actor, whether preflight was forced, and a gate-report summary. History is
replayed from the tags; nothing is ever rewritten.

GTO orders events by tagger time, which has one-second resolution. To keep a deploy and a
rollback within the same second unambiguous, each new stage tag of a bundle gets a tagger
time strictly greater than every earlier one. During a burst the tag times may run a few
seconds ahead of the wall clock; the journal records the real times.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from rollbackkit.errors import VersionNotFound
from rollbackkit.locking import repo_lock
from rollbackkit.refs import validate_name

if TYPE_CHECKING:
    from rollbackkit.registry import Registry, VersionInfo

Action = Literal["deploy", "canary", "promote", "rollback", "auto-rollback"]
TRAILER = "Rollbackkit-Assignment"
STAGE_RE = re.compile(r"^(?P<name>[a-z0-9]([a-z0-9-]*[a-z0-9])?)#(?P<env>[a-z0-9]([a-z0-9-]*[a-z0-9])?)#(?P<n>\d+)$")


@dataclass(frozen=True)
class Assignment:
    """One assignment of a version to an environment."""

    name: str
    env: str
    version: str
    tag: str
    time: str
    action: str
    reason: str = ""
    incident: str = ""
    actor: str = ""
    forced: bool = False
    gates: str = ""
    canary_percent: int | None = None
    number: int = 0
    timestamp: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the entries of ``rollbackkit history --json``)."""
        data = asdict(self)
        del data["timestamp"]
        return data


class Deployments:
    """Assignment history of one repository.

    Args:
        registry: The registry whose versions are assigned.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def history(self, name: str, env: str | None = None) -> list[Assignment]:
        """Assignments of ``name`` (in ``env``, or all), oldest first."""
        validate_name(name)
        if env is not None:
            validate_name(env, "environment name")
        by_commit = {v.commit: v.version for v in self.registry.versions(name)}
        out = []
        for tag in self.registry.git.tags():
            match = STAGE_RE.match(tag.name)
            if not match or match["name"] != name or (env is not None and match["env"] != env):
                continue
            meta = _meta(tag.message)
            out.append(
                Assignment(
                    name=name,
                    env=match["env"],
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
                    number=int(match["n"]),
                    timestamp=tag.timestamp,
                )
            )
        return sorted(out, key=lambda a: (a.timestamp, a.number))

    def current(self, name: str, env: str) -> Assignment | None:
        """The latest assignment in ``env`` (None if nothing was ever assigned)."""
        history = self.history(name, env)
        return history[-1] if history else None

    def serving(self, name: str, env: str) -> Assignment | None:
        """The latest assignment that takes all traffic (canaries do not count)."""
        full = [a for a in self.history(name, env) if a.action != "canary"]
        return full[-1] if full else None

    def previous(self, name: str, env: str) -> Assignment | None:
        """The version that served fully before the one serving now ("which version was before?")."""
        full = [a for a in self.history(name, env) if a.action != "canary"]
        if not full:
            return None
        now = full[-1].version
        return next((a for a in reversed(full[:-1]) if a.version != now), None)

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
    ) -> Assignment:
        """Record an assignment as a new stage tag (under the repository lock)."""
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
        tag: str | None = None,
    ) -> Assignment:
        """:meth:`assign` for a caller that already holds the repository lock.

        ``tag`` is a name reserved earlier with :meth:`next_tag` (under the same lock hold).
        """
        tags = self.registry.git.tags()
        times = [t.timestamp for t in tags if (m := STAGE_RE.match(t.name)) and m["name"] == info.name]
        stamp = max(int(time.time()), max(times, default=0) + 1)
        tag = tag or self.next_tag(info.name, env)
        meta: dict[str, Any] = {
            "action": action,
            "reason": reason,
            "incident": incident,
            "actor": actor or self._actor(),
            "forced": forced,
            "gates": gates,
            "canary_percent": canary_percent,
            "version": info.version,
        }
        message = (
            f"Assigning stage {env} to artifact {info.name} version {info.version}\n\n{action}: {reason}".rstrip(": ")
            + f"\n\n{TRAILER}: {json.dumps(meta, sort_keys=True)}\n"
        )
        self.registry.git.create_tag(tag, info.commit, message, timestamp=stamp)
        number = int(tag.rsplit("#", 1)[1])
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
        )

    def next_tag(self, name: str, env: str) -> str:
        """The name the next assignment of ``name`` will get (hold the repository lock)."""
        numbers = [int(m["n"]) for t in self.registry.git.tags() if (m := STAGE_RE.match(t.name)) and m["name"] == name]
        return f"{name}#{env}#{max(numbers, default=0) + 1}"

    def resolve_target(self, name: str, env: str, to: str | None) -> VersionInfo:
        """The version a rollback goes to: ``to`` if given, else the previous full assignment."""
        if to:
            return self.registry.resolve(f"{name}@{to}")
        previous = self.previous(name, env)
        if previous is None:
            raise VersionNotFound(
                f"{name} has no earlier version in {env} to roll back to.",
                "Pass --to VERSION, or deploy a version first.",
            )
        return self.registry.resolve(f"{name}@{previous.version}")

    def _actor(self) -> str:
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


def _meta(message: str) -> dict[str, Any]:
    match = re.search(rf"^{TRAILER}: (\{{.*\}})\s*$", message, re.MULTILINE)
    if not match:
        return {}
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
