"""The one home of the rollout-option rules: which shares, steps and bakes make one rollout.

A deploy is all at once, a canary (``canary`` percent), a shadow (``shadow`` percent
mirrored) or a stepped rollout (``steps`` ending at 100, each baking ``bake``). The CLI and
Python faces (:mod:`rollbackkit.ops.rollout_options`), the admin API's bodies and the
serving environment all ask :func:`checked_rollout` and :func:`checked_promote`, so a
refusal reads the same (one line) with or without a server. Fields are worded as the API
spells them (:data:`FIELDS`); a face passes its own spelling (the CLI's flags, ``--from-shadow``)
as ``names``, so a refusal differs only by that spelling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from rollbackkit.analysis.durations import format_duration, parse_duration
from rollbackkit.errors import InvalidInput

CANARY_RANGE = (1, 99)
"""A canary's share of traffic, percent (100 is a full deploy)."""
SHADOW_RANGE = (1, 100)
"""A shadow's share of requests mirrored, percent."""
STEP_RANGE = (1, 100)
"""Each step of a stepped rollout, percent (the last is 100: the promotion)."""
FIELDS: Mapping[str, str] = {k: k for k in ("canary", "shadow", "steps", "bake", "from_shadow")}
"""The rollout fields as the admin API spells them (the default ``names``)."""
STEPS_HINT = "Give two or more increasing percents ending at 100, such as steps 5,25,50,100."
BAKE_HINT = "Give each step a duration such as 30s, 10m, 2h to pass its gates for."


def steps_hint(names: Mapping[str, str] = FIELDS) -> str:
    """:data:`STEPS_HINT` with ``steps`` spelled as ``names`` spell it."""
    return STEPS_HINT.replace("such as steps", f"such as {names['steps']}")


@dataclass(frozen=True)
class RolloutPlan:
    """How a deploy takes traffic: all at once (every field None), a canary, a shadow or steps.

    Attributes:
        canary: Percent of traffic for a canary (:data:`CANARY_RANGE`).
        shadow: Percent of live requests mirrored to the version (:data:`SHADOW_RANGE`),
            whose answers are logged and never returned.
        steps: Canary percents, increasing, ending at 100 (the last step is the promotion).
        bake_s: Seconds each step's gates must pass before the next, more than 0 (None: the
            server's ``--bake-seconds``).
    """

    canary: int | None = None
    shadow: int | None = None
    steps: tuple[int, ...] | None = None
    bake_s: float | None = None

    @property
    def needs_server(self) -> str | None:
        """What of this plan only a running server can do (``A canary``...), or None."""
        if self.shadow is not None:
            return "A shadow"
        if self.steps is not None:
            return "A stepped rollout"
        return "A canary" if self.canary is not None else None

    def body(self) -> dict[str, Any]:
        """The deploy body's rollout fields: ``canary`` always (as before), the others when set
        (an older server refuses keys it does not know)."""
        extra = {"shadow": self.shadow, "steps": list(self.steps) if self.steps else None, "bake": self.bake_s}
        return {"canary": self.canary, **{k: v for k, v in extra.items() if v is not None}}


def checked_rollout(
    canary: int | None = None,
    shadow: int | None = None,
    steps: str | Sequence[int] | None = None,
    bake_s: str | float | None = None,
    names: Mapping[str, str] = FIELDS,
) -> RolloutPlan:
    """The one rollout ``canary``, ``shadow``, ``steps`` and ``bake_s`` make, checked.

    ``steps`` may be ``"5,25,50,100"`` or a sequence of ints; ``bake_s`` seconds or a
    duration such as ``"10m"``. ``names``: how the refusal spells each field (:data:`FIELDS`).

    Raises:
        InvalidInput: More than one of canary, shadow and steps; a bake without steps; a
            share out of range; steps that are not two or more increasing percents ending at
            100; a bake that is not a duration, or is 0 (no gate would ever be read).
    """
    n = names
    chosen = [n[k] for k, v in (("canary", canary), ("shadow", shadow), ("steps", steps)) if v is not None]
    if len(chosen) > 1:
        raise InvalidInput(
            f"{' and '.join(chosen)} cannot be combined: a deploy takes one of "
            f"{n['canary']}, {n['shadow']} or {n['steps']}.",
            f"Pick one; a shadow becomes a canary with promote {n['from_shadow']} {n['canary']} PCT.",
        )
    if bake_s is not None and steps is None:
        raise InvalidInput(
            f"{n['bake']} applies to a stepped rollout only, and no {n['steps']} were given.",
            f"Add {n['steps']}, e.g. {n['steps']} 5,25,50,100 {n['bake']} 10m.",
        )
    return RolloutPlan(
        canary=_percent(canary, n["canary"], CANARY_RANGE) if canary is not None else None,
        shadow=_percent(shadow, n["shadow"], SHADOW_RANGE) if shadow is not None else None,
        steps=checked_steps(steps, names) if steps is not None else None,
        bake_s=checked_bake(bake_s, names) if bake_s is not None else None,
    )


def checked_steps(value: str | Sequence[int], names: Mapping[str, str] = FIELDS) -> tuple[int, ...]:
    """``"5,25,50,100"`` (or a sequence of ints) as percents: at least two, each in
    :data:`STEP_RANGE`, strictly increasing, ending at 100.

    Raises:
        InvalidInput: Naming the first bad step.
    """
    what, hint = names["steps"], steps_hint(names)
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    steps = [_percent(int(p) if isinstance(p, str) and p.isdigit() else p, what, STEP_RANGE) for p in parts]
    if len(steps) < 2:
        said = ",".join(map(str, steps)) or "none"
        raise InvalidInput(f"{what}: {said} is one step; a stepped rollout needs at least two steps.", hint)
    for before, after in pairwise(steps):
        if after <= before:
            raise InvalidInput(f"{what}: {after} after {before} does not increase (strictly increasing).", hint)
    if steps[-1] != 100:
        raise InvalidInput(f"{what}: the last step must be 100 (the promotion), not {steps[-1]}.", hint)
    return tuple(steps)


def checked_bake(value: str | float, names: Mapping[str, str] = FIELDS) -> float:
    """A bake (``"10m"``, ``90``) in seconds, more than 0.

    Raises:
        InvalidInput: Not a duration such as 30s, 10m, 2h, or 0.
    """
    seconds = parse_duration(value, names["bake"])
    if seconds <= 0:
        raise InvalidInput(
            f"{names['bake']}: {format_duration(seconds)} is no time at all: no gate would be read.", BAKE_HINT
        )
    return seconds


def checked_promote(from_shadow: bool, canary: int | None, names: Mapping[str, str] = FIELDS) -> int | None:
    """The canary percent a promote starts from a shadow (None: all traffic), checked
    (``names``: how the refusal spells each field, :data:`FIELDS`).

    Raises:
        InvalidInput: ``canary`` without ``from_shadow``, or outside :data:`CANARY_RANGE`.
    """
    if canary is not None and not from_shadow:
        raise InvalidInput(
            f"promote takes {names['canary']} only from a shadow, and {names['from_shadow']} was not given.",
            f"Promote the running shadow with {names['from_shadow']} {names['canary']} PCT "
            "(a running canary is promoted with neither).",
        )
    return _percent(canary, names["canary"], CANARY_RANGE) if canary is not None else None


def _percent(value: object, what: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what}: {value!r} is not a whole percent.", f"Give {what} {low}-{high}.")
    if not low <= value <= high:
        raise InvalidInput(f"{what}: {value} is not a percent from {low} to {high}.", f"Give {what} {low}-{high}.")
    return value
