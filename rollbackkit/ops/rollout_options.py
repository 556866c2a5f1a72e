"""What a deploy or a promote asks of a rollout (a canary, a shadow, steps, a bake), read and
checked before anything moves: bad values fail here with one line, with or without a server.

The rules have one home, :mod:`rollbackkit.analysis.rollout_plan`, which the server applies
to the same request too; this module gives the faces their names for them, and words each
field as the CLI's flag (:data:`FLAGS`: ``--from-shadow``, ``--shadow 1-100``), so a refusal
names the option as it was typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollbackkit.analysis.rollout_plan import (
    FIELDS,
    RolloutPlan,
    checked_bake,
    checked_promote,
    checked_rollout,
    checked_steps,
    steps_hint,
)

RolloutRequest = RolloutPlan
"""The faces' name for :class:`~rollbackkit.analysis.rollout_plan.RolloutPlan`."""

FLAGS = {field: "--" + field.replace("_", "-") for field in FIELDS}
"""Each rollout field as the CLI's option (``from_shadow``: ``--from-shadow``)."""
STEPS_HINT = steps_hint(FLAGS)
"""What steps look like, worded with the CLI's flags."""

__all__ = ["FLAGS", "STEPS_HINT", "RolloutRequest", "parse_bake", "parse_steps", "promote_body", "rollout_request"]


def parse_steps(value: str | Sequence[int]) -> tuple[int, ...]:
    """``"5,25,50,100"`` as checked percents (:func:`~rollbackkit.analysis.rollout_plan.checked_steps`,
    worded with :data:`FLAGS`)."""
    return checked_steps(value, FLAGS)


def parse_bake(value: str | float) -> float:
    """A bake in seconds (:func:`~rollbackkit.analysis.rollout_plan.checked_bake`, worded with :data:`FLAGS`)."""
    return checked_bake(value, FLAGS)


def rollout_request(
    *,
    canary: int | None = None,
    shadow: int | None = None,
    steps: str | Sequence[int] | None = None,
    bake: str | float | None = None,
) -> RolloutPlan:
    """Read a deploy's ``canary``, ``shadow``, ``steps`` and ``bake`` into a :class:`RolloutRequest`
    (:func:`~rollbackkit.analysis.rollout_plan.checked_rollout`, its refusals worded with :data:`FLAGS`).

    Raises:
        InvalidInput: More than one of canary, shadow and steps; ``bake`` without steps;
            a share out of range; steps that are not increasing percents ending at 100; a
            bake that is not a duration such as 30s, 10m, 2h, or is 0.
    """
    return checked_rollout(canary, shadow, steps, bake, FLAGS)


def promote_body(from_shadow: bool, canary: int | None) -> dict[str, Any]:
    """A promote body's new fields, sent only when set (an older server refuses unknown keys).

    Raises:
        InvalidInput: ``canary`` without ``from_shadow``, or out of 1-99.
    """
    canary = checked_promote(from_shadow, canary, FLAGS)
    return {**({"from_shadow": True} if from_shadow else {}), **({"canary": canary} if canary is not None else {})}
