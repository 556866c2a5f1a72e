"""What a deploy or a promote asks of a rollout (a canary, a shadow, steps, a bake), read and
checked before anything moves: bad values fail here with one line, with or without a server.

The rules have one home, :mod:`rollbackkit.analysis.rollout_plan`, which the server applies
to the same request too; this module gives the faces their names for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollbackkit.analysis.rollout_plan import STEPS_HINT as STEPS_HINT
from rollbackkit.analysis.rollout_plan import RolloutPlan, checked_promote, checked_rollout
from rollbackkit.analysis.rollout_plan import checked_bake as parse_bake
from rollbackkit.analysis.rollout_plan import checked_steps as parse_steps

RolloutRequest = RolloutPlan
"""The faces' name for :class:`~rollbackkit.analysis.rollout_plan.RolloutPlan`."""

__all__ = ["STEPS_HINT", "RolloutRequest", "parse_bake", "parse_steps", "promote_body", "rollout_request"]


def rollout_request(
    *,
    canary: int | None = None,
    shadow: int | None = None,
    steps: str | Sequence[int] | None = None,
    bake: str | float | None = None,
) -> RolloutPlan:
    """Read a deploy's ``canary``, ``shadow``, ``steps`` and ``bake`` into a :class:`RolloutRequest`
    (:func:`~rollbackkit.analysis.rollout_plan.checked_rollout`).

    Raises:
        InvalidInput: More than one of canary, shadow and steps; ``bake`` without steps;
            a share out of range; steps that are not increasing percents ending at 100; a
            bake that is not a duration such as 30s, 10m, 2h, or is 0.
    """
    return checked_rollout(canary, shadow, steps, bake)


def promote_body(from_shadow: bool, canary: int | None) -> dict[str, Any]:
    """A promote body's new fields, sent only when set (an older server refuses unknown keys).

    Raises:
        InvalidInput: ``canary`` without ``from_shadow``, or out of 1-99.
    """
    canary = checked_promote(from_shadow, canary)
    return {**({"from_shadow": True} if from_shadow else {}), **({"canary": canary} if canary is not None else {})}
