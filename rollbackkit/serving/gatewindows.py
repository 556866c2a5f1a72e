"""The rows a candidate's gates are judged on: its window, live over the same minutes, and rows old enough for labels.

A window is the newest rows of a deployment (at most ``WINDOW_ROWS``). On a busy service
those rows may all be younger than a label gate's ``label_delay``, so the label gates would
wait for ever; they are judged on the window plus the newest rows at least ``label_delay``
old (the largest delay among the gates). Gates that compare with live read live's rows
between the candidate window's first and last times, so both sides cover the same minutes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from rollbackkit.analysis.gateresult import decide
from rollbackkit.analysis.gates import GateReport, evaluate
from rollbackkit.analysis.gatespec import parse_gates_dict
from rollbackkit.serving.rollout import first_time, last_time
from rollbackkit.serving.routing_state import RoutingState, Slot

Reader = Callable[..., pd.DataFrame]
"""``read(slot, since=None, until=None)``: a deployment's gate window between ISO times."""

_KEYS = ["request_id", "row"]


class Judged(Protocol):
    """What judging a candidate reads of its environment (the watchdog's and ``GET /analysis``'s)."""

    def window(self, slot: Slot, *, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """The deployment's recent requests as a gate window (``since``, ``until``: ISO times)."""

    def step_started(self, deployment: str) -> float:
        """When the deployment's assignment began (monotonic seconds)."""


def judge_candidate(
    env: Judged, state: RoutingState, role: str, slot: Slot, window: pd.DataFrame, *, began: str | None, now: datetime
) -> GateReport:
    """The candidate's gate report as the watchdog judges it, before any ``failure_limit`` is applied.

    The one home of :func:`judge`'s inputs: live beside it unless it is live itself, and the
    time it has served counted from its step's start (``initial_delay``).

    Args:
        env: The served environment.
        state: The routing state the candidate was read from.
        role: ``live``, ``canary`` or ``shadow``.
        slot: The candidate.
        window: Its newest rows (``env.window(slot)``).
        began: When its assignment began (ISO), or None.
        now: The time label delays count back from.
    """
    live_slot = state.slot(state.live) if role != "live" else None
    serving_for = max(0.0, time.monotonic() - env.step_started(slot.deployment))
    return judge(env.window, slot, window, live_slot, began=began, now=now, serving_for=serving_for)


def judge(
    read: Reader,
    slot: Slot,
    window: pd.DataFrame,
    live_slot: Slot | None,
    *,
    began: str | None,
    now: datetime,
    serving_for: float,
) -> GateReport:
    """The candidate's gate report over its ``window`` (label gates: also on rows old enough for labels).

    Args:
        read: Reads a deployment's window (:meth:`ServingEnvironment.window`).
        slot: The candidate.
        window: Its newest rows (``read(slot)``).
        live_slot: The live version serving beside it, or None.
        began: When its assignment began (ISO), for live's rows when its window has no times.
        now: The time label delays count back from.
        serving_for: Seconds the deployment has served (``initial_delay``).
    """
    live = _live(read, live_slot, window, began)
    report = evaluate(slot.bundle, window, live=live, now=now, serving_for=serving_for)
    delayed, delay = _label_gates(slot.bundle)
    if not delayed or window.empty:
        return report
    until = now - timedelta(seconds=delay)
    if _eligible(window, until) >= _needed(slot.bundle):
        return report  # the window holds enough rows old enough for their labels already
    older = read(slot, until=until.isoformat())
    if older.empty:
        return report
    old_live = _live(read, live_slot, older, began)
    both_live = live if old_live is None or live is None else _union(old_live, live)
    labels = copy.copy(slot.bundle)
    labels.gates = {**slot.bundle.gates, "gates": delayed}
    rows = _union(older, window)
    by_label = {g.name: g for g in evaluate(labels, rows, live=both_live, now=now, serving_for=serving_for).gates}
    gates = [by_label.get(g.name, g) for g in report.gates]
    return replace(report, decision=decide(gates), gates=gates)


def _live(read: Reader, live_slot: Slot | None, window: pd.DataFrame, began: str | None) -> pd.DataFrame | None:
    """Live's rows over the candidate window's minutes (None when no live version serves beside it)."""
    if live_slot is None:
        return None
    return read(live_slot, since=first_time(window) or began, until=last_time(window))


def _eligible(window: pd.DataFrame, until: datetime) -> int:
    """The window's labelled rows at least a label delay old (at or before ``until``)."""
    if "time" not in window.columns:
        return 0
    old = pd.to_datetime(window["time"], utc=True) <= pd.Timestamp(until)
    if "label" in window.columns:
        old &= window["label"].notna()
    return int(old.sum())


def _needed(bundle: Any) -> int:
    """The most rows any gate of ``bundle`` needs (its ``min_samples``, else the spec's)."""
    spec = parse_gates_dict(bundle.gates, f"{bundle.info.tag} gates.yaml")
    return max([g.min_samples or spec.min_samples for g in spec.gates], default=spec.min_samples)


def _label_gates(bundle: Any) -> tuple[list[dict[str, Any]], float]:
    """The gates (as written) that wait ``label_delay`` for labels, and the largest delay."""
    spec = parse_gates_dict(bundle.gates, f"{bundle.info.tag} gates.yaml")
    written = (bundle.gates or {}).get("gates") or []
    delays: list[tuple[dict[str, Any], float]] = []
    for w, g in zip(written, spec.gates, strict=False):
        delay = getattr(g, "label_delay", None)
        if delay:
            delays.append((w, float(delay)))
    return [w for w, _ in delays], max((d for _, d in delays), default=0.0)


def _union(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """Both windows' rows once each (by ``request_id`` and ``row``), oldest first."""
    both = pd.concat([older, newer], ignore_index=True)
    if all(k in both.columns for k in _KEYS):
        both = both.drop_duplicates(_KEYS, keep="last", ignore_index=True)
    return both
