"""Rows scored by the version a warm slot holds, for a rollback preview: nothing routed, logged or shifted.

``POST /admin/score`` finds the slot whose bundle is the asked version (live, the canary, the
shadow, or the warm standby that still holds a version rolled back from or promoted away
from) and scores the rows with :meth:`~rollbackkit.serving.router.Router.score`: the serving
path's own check and adaptation (column names, columns and dtypes; value domains only once
the model fails), on a bundle that passed its golden-sample warm-up in this process. The
rows are not routed (no traffic share changes), not kept in the log or a gate's window, and
not counted in ``/metrics``.

The work runs off the event loop in batches of :data:`BATCH_ROWS` rows, and before each one
it waits until no live request is being scored, as the shadow's worker does (at most
:data:`~rollbackkit.serving.shadow.YIELD_MAX` seconds, so a busy server still answers).
Batching assumes a version answers each row on its own (as the shadow's batches do).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.errors import IncompatibleInput, InvalidInput, RollbackkitError
from rollbackkit.serving.answers import BadRequest
from rollbackkit.serving.bodies import MAX_SCORE_ROWS, ScoreBody
from rollbackkit.serving.shadow import YIELD_MAX
from rollbackkit.serving.threads import limit_scoring_threads
from rollbackkit.serving.wire import encode_frame

if TYPE_CHECKING:
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.routing_state import RoutingState, Slot

BATCH_ROWS = 500
"""Rows scored per model call; live requests go first between two calls."""


class Unscored(RollbackkitError):
    """The rows were not scored in a slot; ``status`` is the HTTP answer's (404, 422 or 500), ``extra``
    its other fields."""

    def __init__(self, message: str, hint: str, status: int, **extra: Any) -> None:
        super().__init__(message, hint)
        self.status, self.extra = status, extra


def holding(state: RoutingState, version: str) -> tuple[str, Slot] | None:
    """The role (live, canary, shadow, standby) and slot that hold ``version``, or None."""
    for role, slot in state.roles().items():
        if slot is not None and slot.bundle.version == version:
            return role, slot
    return None


def score_answer(
    env: ServingEnvironment, body: ScoreBody, decode: Callable[[Any, str], pd.DataFrame]
) -> dict[str, Any]:
    """The answer of ``POST /admin/score``: ``version``, ``bundle_id``, ``slot``, ``role``,
    ``deployment``, ``rows``, ``batches``, ``score_ms``, ``adaptation``, ``outputs`` (a wire frame) and
    ``runtime`` (the slot's runtime findings: this process's libraries against the registered ones).

    Args:
        env: The served environment.
        body: The request.
        decode: Reads the body's wire frame (a bad one is the client's 400).

    Raises:
        InvalidInput: The body names another bundle or environment than this server's.
        BadRequest: More than :data:`~rollbackkit.serving.bodies.MAX_SCORE_ROWS` rows (413), or none.
        Unscored: No slot holds the version (404), it refuses the rows (422) or its model fails (500).
    """
    if (body.name, body.env) != (env.name, env.env):
        raise InvalidInput(
            f"This server serves {env.name} in {env.env}, not {body.name} in {body.env}.",
            f"Call the server of {body.name} in {body.env}.",
        )
    declared = body.frame.get("rows")
    if isinstance(declared, int) and declared > MAX_SCORE_ROWS:
        raise BadRequest(*_too_many(declared))
    frame = decode(body.frame, "frame")
    if len(frame) > MAX_SCORE_ROWS:
        raise BadRequest(*_too_many(len(frame)))
    if frame.empty:
        raise BadRequest("The frame has no rows to score.", "Send at least one row.")
    state = env.router.state
    found = holding(state, body.version)
    if found is None:
        held = {role: s.bundle.version for role, s in state.roles().items() if s is not None}
        said = ", ".join(f"{role} {version}" for role, version in held.items()) or "nothing"
        raise Unscored(
            f"No slot of this server holds {env.name}@{body.version} (it holds {said}).",
            "Score it with the loaded bundle instead (Registry.load).",
            404,
            slots=held,
        )
    role, slot = found
    limit_scoring_threads(env.scoring_threads, state.generation)  # the pools live scoring uses
    started = time.perf_counter()
    outputs, batches, adaptation = _scored(env, slot, frame)
    return {
        "version": slot.bundle.version,
        "bundle_id": slot.bundle.bundle_id,
        "slot": slot.name,
        "role": role,
        "deployment": slot.deployment,
        "rows": len(outputs),
        "batches": batches,
        "score_ms": round((time.perf_counter() - started) * 1000, 3),
        "adaptation": adaptation,
        "outputs": encode_frame(outputs),
        "runtime": slot.bundle.runtime.to_dict(),
    }


def _too_many(rows: int) -> tuple[str, str, int]:
    return (
        f"The frame has {rows:,} rows; a slot scores at most {MAX_SCORE_ROWS:,} per call.",
        "Send a sample of at most that many rows (or split it into several calls).",
        413,
    )


def _scored(env: ServingEnvironment, slot: Slot, frame: pd.DataFrame) -> tuple[pd.DataFrame, int, dict[str, Any]]:
    """Outputs of ``frame`` on ``slot``, batch by batch between live requests; the batches; the adaptation."""
    try:
        adaptation = env.router.adaptation(slot, frame)  # the whole frame refused at once, before any batch
        parts = []
        for start in range(0, len(frame), BATCH_ROWS):
            env.in_flight.wait_idle(YIELD_MAX)  # live requests first
            parts.append(env.router.score(slot, frame.iloc[start : start + BATCH_ROWS]).outputs)
    except IncompatibleInput as exc:
        raise Unscored(exc.message, exc.hint, 422, columns=exc.columns) from None
    except Exception as exc:  # the model failed on rows it should take: the server's, said in one line and counted
        said = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        env.background_failed(f"admin/score: {slot.bundle.info.tag} failed on the rows: {said}")
        raise Unscored(f"{slot.bundle.info.tag} failed on the rows: {said}.", "See the server's log.", 500) from None
    outputs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return outputs, len(parts), adaptation.to_dict()
