"""Gates over what was logged: a version's gates evaluated over a window file or its rows in the log.

The evaluation itself is pure (:func:`rollbackkit.analysis.gates.evaluate`); this module
finds the version in the registry and reads its window from the prediction log. A version
serving as a canary or shadow beside live is judged as the watchdog judges it
(:func:`rollbackkit.serving.gatewindows.judge`): its deployment's window, and live's rows
over the same minutes for the gates that compare with live (a shadow pairs them by request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rollbackkit.analysis.gates import GateReport, evaluate
from rollbackkit.errors import InvalidInput
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Deployments, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Assignment
from rollbackkit.serving.gatewindows import judge
from rollbackkit.serving.logs import open_log
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.routing_state import Slot

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription


def evaluate_logged(
    registry: Repository, ref: str, *, window: str | Path | None = None, env: str | None = None
) -> GateReport:
    """Evaluate ``ref``'s gates over a window file, or over its latest rows in ``env``'s log.

    Args:
        registry: The project's repository.
        ref: ``NAME@VERSION``.
        window: A Parquet/CSV window (exclusive with ``env``).
        env: Read the window from the prediction log (the version's latest rows, as many
            as a served window holds; beside live, as the watchdog reads them).
    """
    if window is not None and env is None:
        return evaluate(describe(registry, resolve(registry, ref)), window)
    if env is None or window is not None:
        raise InvalidInput("Give exactly one of --window PATH or --env ENV.", "See rollbackkit gates check --help.")
    bundle = describe(registry, resolve(registry, ref))
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        return judge_logged(registry, log, bundle, validate_name(env, "environment name"))
    finally:
        log.close()


@dataclass(frozen=True)
class _Logged:
    """A deployment as the log knows it (what :func:`judge` reads of a slot)."""

    bundle: BundleDescription
    deployment: str


def judge_logged(registry: Repository, log: PredictionStore, bundle: BundleDescription, env: str) -> GateReport:
    """``bundle``'s gates over its rows in ``env``'s log: a canary's or shadow's deployment window
    beside live's rows over the same minutes (the watchdog's report), else its latest rows."""
    name = bundle.info.name
    state = Deployments(registry).state(name, env)
    mine = next((a for a in (state.canary, state.shadow, state.live) if a and a.version == bundle.version), None)
    if mine is None:  # not serving now: its latest rows, judged alone
        return evaluate(bundle, log.window(name, env, version=bundle.version))

    def read(slot: Any, since: str | None = None, until: str | None = None) -> Any:
        return log.window(name, env, deployment=slot.deployment, since=since, until=until)

    live = state.live if mine is not state.live and state.live is not None else None
    candidate = _Logged(bundle, mine.tag)
    beside = _Logged(_described(registry, name, live, bundle), live.tag) if live is not None else None
    now = datetime.now(UTC)
    return judge(
        read,
        cast(Slot, candidate),
        read(candidate),
        cast(Slot | None, beside),
        began=mine.time,
        now=now,
        serving_for=_served(mine, now),
    )


def _described(registry: Repository, name: str, live: Assignment, bundle: BundleDescription) -> BundleDescription:
    if live.version == bundle.version:
        return bundle
    return describe(registry, resolve(registry, f"{name}@{live.version}"))


def _served(assignment: Assignment, now: datetime) -> float:
    """Seconds since ``assignment`` began (for ``initial_delay``)."""
    return max(0.0, (now - datetime.fromisoformat(assignment.time)).total_seconds())
