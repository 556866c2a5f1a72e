"""Which versions a rollback preview re-scores: the ones a rollback takes traffic from, or, after it,
every one it replaced (with the share each had and the deployment it answered under just before).

One rule (:func:`~rollbackkit.ops.plans.leaving_assignments`) names the versions losing traffic.
After several rollbacks the version serving now is the current one: a further rollback re-scores its
rows; the one rolled back from earlier is named in a note (:func:`earlier`), never re-scored again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollbackkit.errors import RollbackRefused
from rollbackkit.ops.plans import leaving_assignments
from rollbackkit.ops.runbook_targets import rolled_back_from
from rollbackkit.ops.serving_now import shares
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Serving

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

Leaving = tuple[str, str, float | None, str | None]
"""``(version, role, traffic %, deployment)`` of a version a preview re-scores."""


def earlier(state: Serving, done: bool, leaving: list[Leaving]) -> str | None:
    """After an earlier rollback, which version the preview re-scores and why the one rolled back
    from is not (its rows were answered before; the earlier rollback's own preview showed them)."""
    if done or not state.last_rolled_back_from or state.version is None:
        return None
    if state.version not in [v for v, *_ in leaving]:
        return None
    gone = ", ".join(state.last_rolled_back_from)
    return (
        f"{state.version} serves since a rollback from {gone}: its rows are the ones re-scored "
        f"({gone}'s were replaced by that rollback)."
    )


def leaving_versions(registry: Repository, state: Serving, name: str, env: str, target: str) -> list[Leaving]:
    """``(version, role, traffic %, deployment)`` of each version losing traffic (the one rule of
    :func:`~rollbackkit.ops.plans.leaving_assignments`); after a rollback, every version it replaced."""
    if state.shadow is not None and state.canary is None and state.version == target:
        return []  # a rollback to the live version only cancels the shadow
    serving = {s.version: s for s in shares(state) if s.role != "shadow"}  # live first: a canary keeps its own
    found: list[Leaving] = []
    for a in leaving_assignments(state, target):
        found.append((a.version, serving[a.version].role, serving[a.version].percent, a.tag))
    if found:
        return found
    replaced = replaced_versions(registry, name, env, target)
    if replaced:
        return replaced
    version = rolled_back_from(registry.paths.root, name, env, target)
    if version is None or version == target:
        raise RollbackRefused(
            f"Nothing served {name} in {env} before {target}, so a rollback to it has nothing to change.",
            "Deploy a version first, or name another target (to_version=...).",
        )
    return [(version, "replaced", None, None)]


def replaced_versions(registry: Repository, name: str, env: str, target: str) -> list[Leaving]:
    """After a rollback to ``target``: every version it took traffic from (the canary first), each
    with the share it had and the deployment it answered under just before."""
    states = Deployments(registry).states(name, env)
    if len(states) < 2 or states[-1][1].version != target or not states[-1][1].last_rolled_back_from:
        return []
    before, gone = states[-2][1], set(states[-1][1].last_rolled_back_from)
    serving = {s.version: s for s in shares(before) if s.role != "shadow"}
    return [
        (a.version, "replaced", serving[a.version].percent if a.version in serving else None, a.tag)
        for a in leaving_assignments(before, target)
        if a.version in gone
    ]


def gate_slice(served: BundleDescription) -> str | None:
    """The first slice gate's column of the version losing traffic (a preview's default slices)."""
    for gate in served.gates.get("gates") or []:
        if isinstance(gate, dict) and gate.get("kind") == "slice" and gate.get("by"):
            return str(gate["by"])
    return None
