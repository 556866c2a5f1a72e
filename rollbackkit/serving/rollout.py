"""Where the version under evaluation stands in its rollout, and how long it has baked.

A rollout is a canary (stepped through ``steps`` with a bake per step, or held at one share
until a person promotes it), a shadow, or a full deploy whose rows wait in staging until its
bake completes. The watchdog builds a :class:`Rollout` at each evaluation; ``/status`` shows
it beside the gate report, so an engineer sees the step, the bake and why nothing moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import pandas as pd

from rollbackkit.analysis.durations import format_duration

if TYPE_CHECKING:
    from rollbackkit.serving.routing_state import RoutingState, Slot

Role = Literal["canary", "shadow", "live"]
RolloutState = Literal["baking", "holding", "paused", "advancing", "rolled-back"]
"""``baking``: the gates pass and the bake clock runs; ``holding``: the gates pass and nothing
moves by itself (a plain canary or a shadow waits for ``promote``); ``paused``: the last
evaluation was inconclusive or a warning (``paused`` says why): an inconclusive one stops the
bake clock and keeps the time baked, a warning resets it;
``advancing``: the step has baked, the next step (or the promotion) is under way;
``rolled-back``: a gate failed and the rollout was rolled back."""

_STATES: frozenset[str] = frozenset(get_args(RolloutState))


@dataclass(frozen=True)
class Rollout:
    """The version under evaluation's place in its rollout.

    Attributes:
        version: The version under evaluation.
        deployment: Its assignment tag (each step of a stepped rollout has its own).
        role: ``canary``, ``shadow``, or ``live`` (a full deploy still baking).
        percent: The canary's (or shadow's) share of requests; None for ``live``.
        steps: A stepped rollout's shares, ending at 100; empty otherwise.
        step: The current step, 1-based (``step`` of ``len(steps)``); None when not stepped.
        bake_s: How long the gates must pass before the next move; None: no automatic move.
        baked_s: How long the gates have passed (kept while paused by an inconclusive evaluation,
            0 after a warning or a failure; see :class:`BakeClock`).
        state: See :data:`RolloutState`.
        paused: Why nothing moves (``no traffic since ...``, the inconclusive gates), or None.
        since: When the current assignment began (ISO time), when known.
    """

    version: str
    deployment: str
    role: Role
    percent: int | None = None
    steps: tuple[int, ...] = ()
    step: int | None = None
    bake_s: float | None = None
    baked_s: float = 0.0
    state: RolloutState = "holding"
    paused: str | None = None
    since: str | None = None

    @property
    def baked(self) -> bool:
        """Whether the gates have passed for the whole bake (never without a bake)."""
        return self.bake_s is not None and self.state != "paused" and self.baked_s >= self.bake_s

    @property
    def next_percent(self) -> int | None:
        """The share the next step takes (100: the promotion); None when not stepped or at the end."""
        if self.step is None or self.step >= len(self.steps):
            return None
        return self.steps[self.step]

    def words(self) -> str:
        """``canary 25% (step 2 of 4): baking 3.2s of 10m`` / ``shadow 50%: paused: no traffic since ...``."""
        head = self.role if self.percent is None else f"{self.role} {self.percent}%"
        if self.step is not None:
            head += f" (step {self.step} of {len(self.steps)})"
        if self.state == "paused":
            return f"{head}: paused: {self.paused}" if self.paused else f"{head}: paused"
        if self.state == "baking" and self.bake_s is not None:
            return f"{head}: baking {format_duration(self.baked_s)} of {format_duration(self.bake_s)}"
        if self.state == "advancing":
            target = self.next_percent
            return f"{head}: baked, {'promoting' if target in (None, 100) else f'advancing to {target}%'}"
        return f"{head}: {self.state}"

    def to_dict(self) -> dict[str, Any]:
        """The rollout's JSON (``rollout`` in a server's gate report)."""
        return {
            "version": self.version,
            "deployment": self.deployment,
            "role": self.role,
            "percent": self.percent,
            "steps": list(self.steps),
            "step": self.step,
            "bake_s": self.bake_s,
            "baked_s": round(self.baked_s, 3),
            "state": self.state,
            "paused": self.paused,
            "since": self.since,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        """From :meth:`to_dict` (keys a newer server adds are ignored; an unknown state reads ``holding``)."""
        state = data.get("state", "holding")
        return cls(
            version=str(data.get("version", "")),
            deployment=str(data.get("deployment", "")),
            role=data.get("role", "canary"),
            percent=data.get("percent"),
            steps=tuple(int(s) for s in data.get("steps") or ()),
            step=data.get("step"),
            bake_s=data.get("bake_s"),
            baked_s=float(data.get("baked_s") or 0.0),
            state=state if state in _STATES else "holding",
            paused=data.get("paused"),
            since=data.get("since"),
        )


Verdict = Literal["pass", "hold", "pause", "reset"]
"""What one evaluation does to the bake: ``pass`` runs it, ``hold`` (a pass over the same rows
as the last one: no new traffic) counts nothing and keeps the time baked up to the last pass,
``pause`` (inconclusive: no traffic, too few labels, an unsupported difference) stops it and keeps
the time baked, ``reset`` (a warning or a failure) sets it back to 0."""


@dataclass
class _Bake:
    """One deployment's bake: seconds banked before the current run of passes, and that run."""

    banked: float = 0.0
    run_from: float | None = None  # when the current run of passes began (None: paused)
    last_pass: float | None = None


class BakeClock:
    """How long each deployment's gates have passed (monotonic seconds), paused and reset by its evaluations.

    A pass runs the clock: the first pass counts from ``started`` when the assignment began in
    this process (its window holds the rows since then), else from that pass, so a restart
    never counts the server's downtime. A pause (inconclusive) keeps the time baked up to the
    last pass and counts nothing until the next pass; a warning or a failure resets it to 0.
    A bake is never completed by minutes without traffic or without labels: a pass over rows
    already judged (``hold``) adds no time, so the bake ends only at a pass over new rows.
    """

    def __init__(self) -> None:
        self._bakes: dict[str, _Bake] = {}

    def observe(self, deployment: str, verdict: Verdict | bool, started: float | None, now: float) -> float:
        """Record one evaluation (``True``/``False``: ``pass``/``reset``); the seconds baked so far."""
        verdict = ("pass" if verdict else "reset") if isinstance(verdict, bool) else verdict
        bake = self._bakes.get(deployment)
        if bake is None:
            bake = self._bakes[deployment] = _Bake(run_from=started)
        if verdict == "reset":
            self._bakes[deployment] = _Bake()
            return 0.0
        if verdict == "hold":  # the bake reaches only as far as the last pass over new rows
            ran = bake.last_pass - bake.run_from if bake.run_from is not None and bake.last_pass is not None else 0.0
            return bake.banked + max(0.0, ran)
        if verdict == "pause":
            if bake.run_from is not None and bake.last_pass is not None:
                bake.banked += max(0.0, bake.last_pass - bake.run_from)
            bake.run_from = bake.last_pass = None
            return bake.banked
        if bake.run_from is None:
            bake.run_from = now
        bake.last_pass = now
        return bake.banked + max(0.0, now - bake.run_from)

    def keep_only(self, deployments: set[str]) -> None:
        """Forget the deployments no longer under evaluation."""
        for gone in set(self._bakes) - deployments:
            del self._bakes[gone]


def candidate(state: RoutingState) -> tuple[Role, Slot | None]:
    """The version under evaluation: the canary, else the shadow, else the live version."""
    for role, name in (("canary", state.canary), ("shadow", state.shadow), ("live", state.live)):
        slot = state.slot(name)
        if slot is not None:
            return role, slot  # type: ignore[return-value]
    return "live", None


def first_time(window: pd.DataFrame) -> str | None:
    """The time of a window's first row (ISO), or None for an empty window or one without times."""
    if window.empty or "time" not in window.columns:
        return None
    first = pd.to_datetime(window["time"], utc=True).min()
    return None if pd.isna(first) else first.isoformat()


def last_time(window: pd.DataFrame) -> str | None:
    """The time of a window's last row (ISO), or None for an empty window or one without times."""
    if window.empty or "time" not in window.columns:
        return None
    last = pd.to_datetime(window["time"], utc=True).max()
    return None if pd.isna(last) else last.isoformat()
