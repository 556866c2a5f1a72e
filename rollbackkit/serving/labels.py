"""Ingesting labels that arrive later: checked against the versions serving, stored in the log.

One path for every face: the server's ``POST /labels`` (:func:`serve_labels`) and, when no
server writes the log, :func:`rollbackkit.ops.labels.ingest_labels` on the log file both call
:func:`ingest`. Labels are read as the live version's prediction type
(:func:`~rollbackkit.analysis.labels.coerce_labels`) before anything is stored, so a bad
label stores nothing (a label fits when it fits the live version or the canary or shadow
serving beside it: :func:`~rollbackkit.analysis.labels.coerce_labels_of`); the log stores them all or nothing
(:meth:`~rollbackkit.serving.predlog.labels.LogLabels.add_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.analysis.labels import coerce_labels_of
from rollbackkit.bundle.schema import OutputContract
from rollbackkit.errors import InvalidInput, RollbackkitError
from rollbackkit.serving.predlog.labels import JOINS
from rollbackkit.serving.predlog.surface import LogCalls

if TYPE_CHECKING:
    from rollbackkit.serving.bodies import LabelsBody
    from rollbackkit.serving.environment import ServingEnvironment


def check_join(on: str) -> str:
    """``on`` when labels can join on it; InvalidInput otherwise."""
    if on not in JOINS:
        raise InvalidInput(
            f"Labels join on request_id or key, not {on!r}.",
            "Pass --on request_id (with the request_id /predict answered) or --on key (the request's key).",
        )
    return on


def checked(labels: pd.DataFrame, contracts: Sequence[tuple[str, OutputContract]], where: str) -> pd.DataFrame:
    """``labels`` with each label read as the first serving version it fits (InvalidInput naming the
    first that fits none); pure, so a client checks a whole file before sending any of it."""
    if "label" in labels.columns and len(labels):
        return labels.assign(label=coerce_labels_of(labels["label"], contracts, where))
    return labels


def ingest(
    log: LogCalls,
    contracts: Sequence[tuple[str, OutputContract]],
    name: str,
    env: str,
    labels: pd.DataFrame,
    on: str,
    where: str,
    *,
    all_rows: bool = False,
) -> dict[str, Any]:
    """Check ``labels`` against the versions serving (``contracts``) and store them.

    Args:
        log: The prediction log (in this process or a server's writer process).
        contracts: ``(NAME@VERSION, output contract)`` of the live version and of a canary or
            shadow serving beside it: a label must fit one of them.
        name: Bundle name.
        env: Environment.
        labels: The join column (``request_id`` with an optional ``row``, or ``key``) and ``label``.
        on: ``request_id`` or ``key``.
        where: Names a label's place in messages, followed by its index label.
        all_rows: Let one key label more than 1,000 logged rows.

    Returns:
        The log's answer (:meth:`~rollbackkit.serving.predlog.labels.LogLabels.add_labels`).

    Raises:
        InvalidInput: ``on`` is neither join, a column is missing, there are no labels, or a
            label does not fit (the first one is named); nothing is stored.
    """
    check_join(on)
    return log.add_labels(name, env, checked(labels, contracts, where), on, all_rows=all_rows)


def body_frame(body: LabelsBody) -> pd.DataFrame:
    """``POST /labels`` items as a frame (index: the item's position); InvalidInput when an item
    lacks the join field or carries the other one."""
    other = "key" if body.on == "request_id" else "request_id"
    for at, item in enumerate(body.labels):
        if getattr(item, body.on) is None or getattr(item, other) is not None:
            raise InvalidInput(
                f"labels[{at}] must have {body.on!r} (and no {other!r}): the body's 'on' is {body.on!r}.",
                'Send {"on": "request_id", "labels": [{"request_id": ..., "row": 0, "label": ...}]} '
                'or {"on": "key", "labels": [{"key": ..., "label": ...}]}.',
            )
        if body.on == "key" and item.row != 0:
            raise InvalidInput(f"labels[{at}] has a row: a key labels every row logged under it.", "Drop row.")
    columns: dict[str, list[Any]] = {body.on: [str(getattr(item, body.on)) for item in body.labels]}
    if body.on == "request_id":
        columns["row"] = [item.row for item in body.labels]
    columns["label"] = [item.label for item in body.labels]
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def serve_labels(env: ServingEnvironment, body: LabelsBody) -> dict[str, Any]:
    """``POST /labels``: the body's labels, checked against the versions serving, into the log."""
    if env.log is None:
        raise RollbackkitError("This server runs without a prediction log.", "Restart it without --no-log.")
    state = env.router.state
    live = state.slot(state.live)
    if live is None:
        raise InvalidInput(
            f"Nothing serves {env.name} in {env.env}: there is no version whose classes labels must match.",
            "Deploy a version first.",
        )
    slots = [live, *(state.slot(s) for s in (state.canary, state.shadow))]
    contracts = [(f"{env.name}@{s.bundle.version}", s.bundle.schema.output) for s in slots if s is not None]
    frame = body_frame(body)
    return ingest(env.log, contracts, env.name, env.env, frame, body.on, "labels item", all_rows=body.all_rows)
