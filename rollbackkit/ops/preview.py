"""Before a rollback: what it would change on the recent live sample.

Every version a rollback takes traffic from (as :func:`rollbackkit.ops.plans.rollback_plan`
lists them: the canary, and the live version unless it is the target) has logged its latest
inputs and answers under its current deployment; the rollback target (the one rule:
:func:`rollbackkit.ops.runbook_targets.rollback_target`) scores the same inputs here, loaded
from the registry with every byte hash-verified (never unpickled unless its flavor was trusted
at register, as a server loads it). A shadow answers nobody: cancelling it flips nothing.
Read-only: no tag, no journal record, no log row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.log_results import AffectedRows
from rollbackkit.ops.plans import planned_rows
from rollbackkit.ops.predictions import has_log, log_call, log_server
from rollbackkit.ops.preview_groups import Scorer
from rollbackkit.ops.preview_leaving import earlier, gate_slice, leaving_versions
from rollbackkit.ops.preview_parts import (
    LOADED,
    Target,
    VersionPreview,
    comparison,
    no_score,
    over_slot,
    read_sample,
    score_target,
    split,
    version_part,
)
from rollbackkit.ops.preview_result import RollbackPreview
from rollbackkit.ops.runbook_targets import rollback_target
from rollbackkit.ops.server_answers import from_server
from rollbackkit.ops.slot_scoring import SLOT_PARITY_UNCHECKED, SLOT_UNCHECKED, slot_preflight
from rollbackkit.ops.traffic import server_for
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Serving
from rollbackkit.serving.bodies import MAX_SAMPLE
from rollbackkit.serving.client import READ_TIMEOUT
from rollbackkit.serving.client import status as server_status

if TYPE_CHECKING:
    import pandas as pd

    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.model import BundleDescription
    from rollbackkit.bundle.runtime import RuntimeReport

__all__ = ["SAMPLE", "TARGET_WORDS", "RollbackPreview", "preview_rollback"]

INFERRED = (
    "The column sets of these rows were inferred from their values (the server did not send the columns each "
    "request sent): a column sent empty reads as not sent."
)
"""The note of a preview whose sample did not record each request's columns."""

NO_THRESHOLD = (
    "No flip share: a regressor's answer is a number, not a decision; pass threshold=T (the score where your "
    "decision changes) to count the decisions that flip."
)
"""The note of a regressor's preview without a threshold (its flip share is n/a)."""

TARGET_WORDS = "to_version='vX.Y.Z'"
"""How a preview's hints name a target (the API's and the panel's words; a runbook says ``-p to_version=``)."""

SAMPLE = 2000
"""The latest answered rows a preview scores per leaving version, by default."""


def preview_rollback(
    repo: str | Path,
    name: str,
    env: str,
    *,
    to_version: str | None = None,
    sample: int = SAMPLE,
    by: str | None = None,
    threshold: float | None = None,
    server: str | None = None,
) -> RollbackPreview:
    """Score each leaving version's latest answered rows with the rollback target and compare.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        to_version: The target (default: the one rollback rule's target).
        sample: The latest answered rows to score per leaving version (read with this limit, at most 50,000).
        by: The slice column (default: the first slice gate's ``by`` of the version losing traffic).
        threshold: A decision threshold on a numeric score (a regressor's prediction, a
            binary classifier's ``proba_*`` at another cut than its own).
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        :class:`RollbackPreview`; a target that cannot score, or whose classes differ, is a
        preview with ``refused`` set.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` or ``to_version`` is not registered, or ``name`` was never in ``env``.
        RollbackRefused: There is nothing to roll back to, or from.
        InvalidInput: No prediction log, no logged rows to score, ``by`` is not a logged input,
            ``sample`` is out of range, or ``threshold`` is put on class labels.
        ServerError: The server refused or did not answer.
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    if not 1 <= sample <= MAX_SAMPLE:
        raise InvalidInput(
            f"sample must be 1-{MAX_SAMPLE:,}, not {sample}.", "Pass the number of latest rows to score."
        )
    target = rollback_target(registry.paths.root, name, env, to_version, flag=TARGET_WORDS)
    state = Deployments(registry).state(name, env)
    target_info = describe(registry, resolve(registry, f"{name}@{target}"))
    leaving = leaving_versions(registry, state, name, env, target)
    if not leaving:
        return _shadow_only(name, env, target, target_info, state, threshold)
    if server is not None:
        server_status(server, timeout=READ_TIMEOUT, paths=registry.paths)  # says so (not "no admin token")
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        raise InvalidInput(f"There is no prediction log for {name} in {env}.", "Serve with the log on, then preview.")
    done = leaving[0][1] == "replaced"
    shifter = server_for(registry, name, env, server)
    quarantines = not done and shifter is not None and url == shifter  # the server that shifts writes the log
    samples = [(v, role, share, read_sample(registry, url, name, env, v, d, sample)) for v, role, share, d in leaving]
    if all(frame.empty for *_, frame in samples):
        version = leaving[0][0]
        raise InvalidInput(
            f"{name}@{version} has no answered rows logged in {env} to preview the rollback on.",
            f"Send it traffic first (rollbackkit affected {name} --env {env} --version {version} counts its rows).",
        )
    goal = Target(registry, resolve(registry, f"{name}@{target}"))
    first = describe(registry, resolve(registry, f"{name}@{leaving[0][0]}"))
    column = by if by is not None else gate_slice(first)
    parts: list[VersionPreview] = []
    report, where, why, slotted, runtime = None, LOADED, None, False, None
    for version, role, share, frame in samples:
        served = first if version == first.version else describe(registry, resolve(registry, f"{name}@{version}"))
        rule = comparison(served, goal.description, threshold)
        split_rows = split(frame, served)
        inputs = split_rows[0]
        if column is not None and by is not None and not inputs.empty and column not in inputs.columns:
            raise InvalidInput(
                f"{column!r} is not a logged input of {name}@{version}.",
                f"Slice by one of: {', '.join(map(str, inputs.columns[:20]))}.",
            )
        found = log_call(registry, url, "affected", name, env, version)
        rows = planned_rows(from_server(AffectedRows.from_dict, found, url, "affected"), quarantines)
        part = version_part(
            version,
            role,
            share,
            split_rows,
            _scorer(registry, shifter, name, env, goal),
            rule,
            column,
            rows,
            frozenset(served.schema.feature_names),
            frozenset(goal.description.schema.feature_names),
        )
        if report is None and part.groups:
            main = part.groups[0]  # the largest column set: the preflight's rows and the adaptation shown
            where, why = main.where or LOADED, over_slot(shifter, main.rows)
            features = inputs.loc[main.members, main.columns].reset_index(drop=True)
            slotted = where != LOADED and not goal.loaded  # the bundle not loaded here: parity unchecked
            runtime = goal.slot_runtimes.get(where) if slotted else None  # the slot's own, when it sent them
            report = _preflight(registry, goal, features, f"{name}@{version}", slot=slotted, runtime=runtime)
        parts.append(part)
    rule = comparison(first, goal.description, threshold)
    inferred = INFERRED if any(g.inferred for p in parts for g in p.groups) else None
    unchecked = (SLOT_UNCHECKED if runtime is None else SLOT_PARITY_UNCHECKED) if slotted else None
    scored = None if rule.score is not None else no_score(first, target_info)
    regressor = goal.description.schema.output.kind == "regression"
    undecided = NO_THRESHOLD if regressor and rule.threshold is None and rule.mismatch is None else None
    notes = (scored, undecided, why, earlier(state, done, leaving), inferred, unchecked)
    return RollbackPreview(
        name=name,
        env=env,
        to_version=target,
        parts=parts,
        kind=goal.description.schema.output.kind,
        primary=goal.description.schema.output.primary,
        score=rule.score,
        threshold=threshold,
        by=column,
        preflight=report,
        from_version=parts[0].version,
        where=where,
        done=done,
        note=" ".join(n for n in notes if n) or None,
        loaded=goal.loaded,
        serves=state.version == target,  # a rollback to the live version skips its preflight
    )


def _scorer(registry: Repository, url: str | None, name: str, env: str, goal: Target) -> Scorer:
    """Scores one column set's rows with the target (a warm slot first, else the bundle loaded here)."""
    return lambda rows: score_target(registry, url, name, env, goal, rows)


def _shadow_only(
    name: str, env: str, target: str, info: BundleDescription, state: Serving, threshold: float | None
) -> RollbackPreview:
    """The preview of a rollback that only cancels a shadow: it answers nobody, nothing flips."""
    shadow = state.shadow.version if state.shadow is not None else target
    return RollbackPreview(
        name=name,
        env=env,
        to_version=target,
        parts=[],
        kind=info.schema.output.kind,
        primary=info.schema.output.primary,
        score=None,
        threshold=threshold,
        by=None,
        preflight=None,
        from_version=shadow,
        note=f"The rollback only cancels the shadow {shadow}: it answers nobody, so no decision flips "
        f"({target} keeps serving all traffic).",
    )


def _preflight(
    registry: Repository,
    goal: Target,
    inputs: pd.DataFrame,
    consumer: str,
    *,
    slot: bool,
    runtime: RuntimeReport | None = None,
) -> PreflightReport:
    """The target's preflight on the sample's largest column set: :func:`slot_preflight` when a warm
    slot scored it and the bundle is not loaded here (``slot``, with the slot's ``runtime`` findings
    when it sent them; :data:`SLOT_UNCHECKED` or :data:`SLOT_PARITY_UNCHECKED` says what it leaves
    out), else the full preflight on the loaded bundle."""
    if slot:
        return slot_preflight(registry.paths.root, goal.description, inputs, consumer, runtime)
    from rollbackkit.registry.checks import preflight_bundle  # pydantic: loaded by a preflight only

    return preflight_bundle(registry, goal.bundle(), inputs, consumer=consumer, rollback=True)
