"""What a deploy or a promote asks of a rollout (a canary, a shadow, steps, a bake), read and
checked before anything moves: bad values fail here with one line, with or without a server.

The server applies the same request (:class:`~rollbackkit.serving.bodies.DeployBody`,
:class:`~rollbackkit.serving.bodies.PromoteBody`); these checks only make the refusal the
same when no server runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from rollbackkit.errors import InvalidInput

STEPS_HINT = "Give two or more increasing percents ending at 100, e.g. --steps 5,25,50,100."


@dataclass(frozen=True)
class RolloutRequest:
    """How a deploy takes traffic: all at once (every field None), a canary, a shadow or steps.

    Attributes:
        canary: Percent of traffic for a canary (1-99).
        shadow: Percent of live requests mirrored to the version (1-100), whose answers are
            logged and never returned.
        steps: Canary percents, increasing, ending at 100 (the last step is the promotion).
        bake_s: Seconds each step's gates must pass before the next (None: the server's
            ``--bake-seconds``).
    """

    canary: int | None = None
    shadow: int | None = None
    steps: tuple[int, ...] | None = None
    bake_s: float | None = None

    @property
    def needs_server(self) -> str | None:
        """What of this request only a running server can do (``a canary``...), or None."""
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


def rollout_request(
    *,
    canary: int | None = None,
    shadow: int | None = None,
    steps: str | Sequence[int] | None = None,
    bake: str | float | None = None,
) -> RolloutRequest:
    """Read a deploy's ``canary``, ``shadow``, ``steps`` and ``bake`` into a :class:`RolloutRequest`.

    Raises:
        InvalidInput: More than one of canary, shadow and steps; ``bake`` without steps;
            a share out of range; steps that are not increasing percents ending at 100; a
            bake that is not a duration such as 30s, 10m, 2h.
    """
    chosen = [f"--{k}" for k, v in (("canary", canary), ("shadow", shadow), ("steps", steps)) if v is not None]
    if len(chosen) > 1:
        raise InvalidInput(
            f"{' and '.join(chosen)} cannot be combined: a deploy is a canary, a shadow or a stepped rollout.",
            "Pick one; a shadow becomes a canary with rollbackkit promote --from-shadow --canary PCT.",
        )
    if bake is not None and steps is None:
        raise InvalidInput(
            "--bake sets how long each step of --steps bakes, and no --steps was given.",
            "Add --steps, e.g. --steps 5,25,50,100 --bake 10m.",
        )
    if shadow is not None:
        _percent(shadow, "--shadow", 1, 100)
    return RolloutRequest(
        canary=canary,
        shadow=shadow,
        steps=parse_steps(steps) if steps is not None else None,
        bake_s=parse_bake(bake) if bake is not None else None,
    )


def parse_steps(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"5,25,50,100"`` (or a sequence of ints) as percents: at least two, each 1-100, strictly
    increasing, ending at 100.

    Raises:
        InvalidInput: Naming the first bad step.
    """
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    steps: list[int] = []
    for part in parts:
        if isinstance(part, bool) or not (isinstance(part, int) or (isinstance(part, str) and part.isdigit())):
            raise InvalidInput(f"--steps: {part!r} is not a whole percent.", STEPS_HINT)
        steps.append(_percent(int(part), "--steps", 1, 100))
    if len(steps) < 2:
        raise InvalidInput(f"--steps: {value!r} is one step; a stepped rollout has two or more.", STEPS_HINT)
    for before, after in pairwise(steps):
        if after <= before:
            raise InvalidInput(f"--steps: {after} after {before} does not increase.", STEPS_HINT)
    if steps[-1] != 100:
        raise InvalidInput(f"--steps: the last step is {steps[-1]}%, not 100% (the promotion).", STEPS_HINT)
    return tuple(steps)


def parse_bake(value: str | float) -> float:
    """A bake (``"10m"``, ``90``) in seconds, more than 0.

    Raises:
        InvalidInput: Not a duration such as 30s, 10m, 2h, or not positive.
    """
    from rollbackkit.analysis.gatespec import parse_duration

    seconds = parse_duration(value, "--bake")
    if seconds <= 0:
        raise InvalidInput(f"--bake: {value!r} is no time at all.", "Give a duration such as 30s, 10m, 2h.")
    return seconds


def promote_body(from_shadow: bool, canary: int | None) -> dict[str, Any]:
    """A promote body's new fields, sent only when set (an older server refuses unknown keys).

    Raises:
        InvalidInput: ``canary`` without ``from_shadow``, or out of 1-99.
    """
    if canary is not None and not from_shadow:
        raise InvalidInput(
            "promote --canary starts a canary from a shadow, and --from-shadow was not given.",
            "Use rollbackkit promote NAME --env ENV --from-shadow --canary PCT.",
        )
    if canary is not None:
        _percent(canary, "--canary", 1, 99)
    return {**({"from_shadow": True} if from_shadow else {}), **({"canary": canary} if canary is not None else {})}


def _percent(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"{what}: {value} is not a percent from {low} to {high}.", f"Give {what} {low}-{high}.")
    return value
