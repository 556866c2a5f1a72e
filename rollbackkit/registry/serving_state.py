"""What an assignment is, and what serves an environment after a series of them.

An :class:`Assignment` is one stage tag read back (:mod:`rollbackkit.registry.assignments`
writes and reads them); :func:`replay` turns an environment's assignments, oldest first,
into the :class:`Serving` state after each one. This is the one rule for what serves,
what runs beside it (a canary taking a share of traffic, a shadow scoring a mirror of it)
and which versions were rolled back from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Action = Literal["deploy", "canary", "shadow", "promote", "rollback", "auto-rollback"]


@dataclass(frozen=True)
class Assignment:
    """One assignment of a version to an environment.

    ``canary_percent`` is a canary's share of traffic; ``shadow_percent`` the share of live
    requests a shadow scores (action ``shadow``). A stepped rollout is a series of
    ``canary`` assignments that each carry the whole plan: ``steps`` (percents, ending at
    100) and ``bake_s`` (seconds each step's gates must pass before the next); it ends in
    a ``promote``. Tags written before these fields existed read as the defaults.
    """

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
    shadow_percent: int | None = None
    steps: tuple[int, ...] = ()
    bake_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.steps, tuple):  # a JSON list read back (history --json, a server's answer)
            object.__setattr__(self, "steps", tuple(self.steps))

    @property
    def step(self) -> tuple[int, int] | None:
        """``(k, n)``: this canary is step k of a stepped rollout's n (None outside one)."""
        if not self.steps or self.canary_percent not in self.steps:
            return None
        return self.steps.index(self.canary_percent) + 1, len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the entries of ``rollbackkit history --json``)."""
        data = asdict(self)
        del data["timestamp"]
        data["steps"] = list(self.steps)
        return data


def plan_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """``shadow_percent``, ``steps`` and ``bake_s`` from a tag's JSON trailer, each checked.

    A trailer written by an older release lacks them, and an unreadable value reads as
    the default: a history is never refused over a field only newer views show.
    """
    shadow = meta.get("shadow_percent")
    steps = meta.get("steps")
    bake = meta.get("bake_s")
    return {
        "shadow_percent": shadow if _is_int(shadow) else None,
        "steps": tuple(steps) if isinstance(steps, list) and all(_is_int(s) for s in steps) else (),
        "bake_s": float(bake) if isinstance(bake, int | float) and _is_number(bake) and bake >= 0 else None,
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Serving:
    """What serves one environment, replayed from its assignment history.

    Attributes:
        name: Bundle name.
        env: Environment.
        live: The assignment under which the live version takes all non-canary traffic
            (its ``tag`` labels the rows that version logs); None before any deploy.
        canary: The running canary's assignment, or None.
        rolled_back_from: Versions rolled back from (by a person or a gate) and not
            deployed again since: never an automatic target.
        served: Versions that took all traffic, oldest first (consecutive repeats folded).
        last_rolled_back_from: The version(s) the latest assignment took traffic away from
            (or, for a shadow, cancelled), when that assignment is a rollback.
        shadow: The running shadow's assignment (it scores a mirror of live requests and
            answers nobody), or None.
    """

    name: str
    env: str
    live: Assignment | None = None
    canary: Assignment | None = None
    rolled_back_from: frozenset[str] = frozenset()
    served: tuple[str, ...] = ()
    last_rolled_back_from: tuple[str, ...] = ()
    shadow: Assignment | None = None

    @property
    def version(self) -> str | None:
        """The live version (what serves ``env``), or None."""
        return self.live.version if self.live else None

    @property
    def canary_percent(self) -> int | None:
        """The running canary's share of traffic, or None."""
        return self.canary.canary_percent if self.canary else None

    @property
    def shadow_percent(self) -> int | None:
        """The share of live requests the running shadow scores, or None."""
        return self.shadow.shadow_percent if self.shadow else None

    @property
    def fallback(self) -> str | None:
        """The automatic rollback target: the newest version that served, is not live, and
        was not rolled back from (None when there is none)."""
        return next(
            (v for v in reversed(self.served) if v != self.version and v not in self.rolled_back_from),
            None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        canary, shadow = self.canary, self.shadow
        return {
            "name": self.name,
            "env": self.env,
            "version": self.version,
            "deployment": self.live.tag if self.live else None,
            "canary": {
                "version": canary.version,
                "deployment": canary.tag,
                "percent": self.canary_percent,
                "steps": list(canary.steps),
                "bake_s": canary.bake_s,
            }
            if canary
            else None,
            "shadow": {"version": shadow.version, "deployment": shadow.tag, "percent": self.shadow_percent}
            if shadow
            else None,
            "rolled_back_from": sorted(self.rolled_back_from),
            "fallback": self.fallback,
        }


def replay(name: str, env: str, history: list[Assignment]) -> list[Serving]:
    """The serving state before any assignment, then after each one (``len(history) + 1`` states).

    deploy: the version goes live (a running canary or shadow ends); canary: it starts (a
    shadow ends: promoted from a shadow, or replaced; each step of a stepped rollout is a
    canary); shadow: it starts beside live and any canary, which are unchanged; promote:
    the canary (or the shadow) goes live; rollback / auto-rollback: the named version goes
    live, and the canary, the shadow and the previous live version (when they differ from
    it) are rolled back from: the canary and the shadow are cancelled. Deploying a version
    (fully, as a canary or as a shadow) or naming it in a rollback clears its rolled-back
    mark. A shadow never counts as served.
    """
    state = Serving(name, env)
    out = [state]
    for a in history:
        live, canary, shadow = state.live, state.canary, state.shadow
        rejected, served = set(state.rolled_back_from), state.served
        left: tuple[str, ...] = ()
        if a.action == "canary":
            canary, shadow = a, None
            rejected.discard(a.version)
        elif a.action == "shadow":
            shadow = a
            rejected.discard(a.version)
        elif a.action in ("rollback", "auto-rollback"):
            gone = (canary, shadow, live)
            left = tuple(dict.fromkeys(x.version for x in gone if x is not None and x.version != a.version))
            rejected.update(left)
            rejected.discard(a.version)
            live, canary, shadow = a, None, None
        else:  # deploy, promote (or an unknown action from a newer writer: it takes all traffic)
            if a.action == "deploy":
                rejected.discard(a.version)
            live, canary, shadow = a, None, None
        if live is not None and (not served or served[-1] != live.version):
            served = (*served, live.version)
        state = Serving(name, env, live, canary, frozenset(rejected), served, left, shadow)
        out.append(state)
    return out
