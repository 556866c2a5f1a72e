"""Before a rollback: what it would change on the recent live sample.

The version a rollback takes traffic from (the canary, else the live version) has logged its
latest inputs and answers; the rollback target (the one rule:
:func:`rollbackkit.ops.runbook_targets.rollback_target`) scores the same inputs here, loaded
from the registry with every byte hash-verified (never unpickled unless its flavor was
trusted at register, as a server loads it). Read-only: no tag, no journal record, no log row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.analysis.preview import SliceDelta, Transition, decisions, deltas_by_slice, flipped, transitions
from rollbackkit.errors import InvalidInput, RollbackRefused
from rollbackkit.ops.log_results import AffectedRows
from rollbackkit.ops.predictions import has_log, log_call, log_server
from rollbackkit.ops.results import from_server
from rollbackkit.ops.runbook_targets import rollback_target, rolled_back_from
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe, load
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import status as server_status
from rollbackkit.serving.wire import decode_frame

if TYPE_CHECKING:
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.compat import Adaptation
    from rollbackkit.bundle.model import BundleDescription, LoadedBundle

LOGGED_FACTS = frozenset({"latency_ms", "error", "time", "request_id", "row", "key", "label"})
"""Columns of a logged window that are facts about the row, neither inputs nor outputs."""

LOADED = "loaded bundle (hash-verified, in this process)"
"""``RollbackPreview.where`` when the target was loaded here."""


@dataclass(frozen=True)
class RollbackPreview:
    """What rolling ``name`` in ``env`` back from ``from_version`` to ``to_version`` would change.

    Attributes:
        name: The bundle name.
        env: The environment.
        from_version: The version that would lose traffic (whose logged rows were scored).
        to_version: The rollback target.
        n: Logged rows scored by both (requests that failed are left out).
        kind: ``classification`` or ``regression`` (the target's output contract).
        primary: The primary output whose deltas are shown.
        threshold: The decision threshold on the primary output (None: a classifier's class).
        flip_share: Share of rows whose decision flips (None: no decisions, or not scored).
        slices: Per slice flip share and deltas, ``"all"`` first (empty when not scored).
        by: The slice column (None: no slices).
        changes: The most frequent flips, ``before -> after``.
        preflight: The target's preflight on the sample (verdict, findings, adaptation).
        refused: Why the target cannot score the sample (None when it scored it).
        affected: The rows ``from_version`` wrote in ``env`` (counts only).
        where: Where the target scored: :data:`LOADED`.
        done: True when the rollback already happened (the target serves; the rows are the
            version it replaced).
    """

    name: str
    env: str
    from_version: str
    to_version: str
    n: int
    kind: str
    primary: str
    threshold: float | None
    flip_share: float | None
    slices: list[SliceDelta]
    by: str | None
    changes: list[Transition]
    preflight: PreflightReport
    refused: str | None
    affected: AffectedRows | None
    where: str = LOADED
    done: bool = False

    @property
    def verdict(self) -> str:
        """The preflight verdict: ``compatible``, ``adaptable`` or ``incompatible``."""
        return self.preflight.verdict

    @property
    def adaptation(self) -> Adaptation:
        """What the target needs done to the live columns (dropped, reordered, cast)."""
        return self.preflight.adaptation

    @property
    def rewrite(self) -> int | None:
        """Rows a backfill would rewrite: ``from_version``'s rows not yet re-scored (None: no log)."""
        if self.affected is None:
            return None
        return self.affected.quarantined if self.done else self.affected.rows - self.affected.backfilled

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what a runbook records): versions, flip share, verdict, slices, backfill rows."""
        return {
            "name": self.name,
            "env": self.env,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "n": self.n,
            "flip_share": self.flip_share,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "adaptation": self.adaptation.to_dict(),
            "refused": self.refused,
            "by": self.by,
            "slices": [asdict(s) for s in self.slices],
            "changes": [asdict(c) for c in self.changes],
            "rewrite": self.rewrite,
            "where": self.where,
            "done": self.done,
        }


def preview_rollback(
    repo: str | Path,
    name: str,
    env: str,
    *,
    to_version: str | None = None,
    sample: int = 2000,
    by: str | None = None,
    threshold: float | None = None,
    server: str | None = None,
) -> RollbackPreview:
    """Score the recent live sample with the rollback target and compare with what was served.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        to_version: The target (default: the one rollback rule's target).
        sample: The latest logged rows to score (at most the log's window limit, 5,000).
        by: The slice column (default: the first slice gate's ``by`` of the version serving).
        threshold: A decision threshold on the primary output (a regressor's decisions, or a
            binary classifier's at another cut than its own).
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        :class:`RollbackPreview`; an incompatible target is a preview with ``refused`` set.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` or ``to_version`` is not registered, or ``name`` was never in ``env``.
        RollbackRefused: There is nothing to roll back to, or from.
        InvalidInput: No prediction log, no logged rows to score, or ``by`` is not a logged input.
        ServerError: The server refused or did not answer.
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    if sample < 1:
        raise InvalidInput(f"sample must be at least 1, not {sample}.", "Pass the number of latest rows to score.")
    target = rollback_target(registry.paths.root, name, env, to_version)
    source = rolled_back_from(registry.paths.root, name, env, target)
    if source is None or source == target:
        raise RollbackRefused(
            f"Nothing served {name} in {env} before {target}, so a rollback to it has nothing to change.",
            "Deploy a version first, or name another target (to_version=...).",
        )
    if server is not None:
        server_status(server)  # a named server that does not answer says so (not "no admin token")
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        raise InvalidInput(f"There is no prediction log for {name} in {env}.", "Serve with the log on, then preview.")
    window = decode_frame(log_call(registry, url, "window", name, env, source))
    served = describe(registry, resolve(registry, f"{name}@{source}"))
    inputs, before = _split(window, served, sample)
    if inputs.empty:
        raise InvalidInput(
            f"{name}@{source} has no logged rows in {env} to preview the rollback on.",
            f"Send it traffic first (rollbackkit affected {name} --env {env} --version {source} counts its rows).",
        )
    bundle = load(registry, resolve(registry, f"{name}@{target}"))
    column = by if by is not None else _gate_slice(served, inputs)
    if column is not None and column not in inputs.columns:
        raise InvalidInput(
            f"{column!r} is not a logged input of {name}@{source}.",
            f"Slice by one of: {', '.join(map(str, inputs.columns[:20]))}.",
        )
    report = _preflight(registry, bundle, inputs, f"{name}@{source}")
    after, refused = _score(bundle, inputs)
    affected = from_server(
        AffectedRows.from_dict, log_call(registry, url, "affected", name, env, source), url, "affected"
    )
    share, slices, changes = _compare(before, after, bundle, threshold, inputs[column] if column is not None else None)
    state = Deployments(registry).state(name, env)
    done = state.canary is None and state.shadow is None and state.version == target
    return RollbackPreview(
        name=name,
        env=env,
        from_version=source,
        to_version=target,
        n=len(inputs),
        kind=bundle.schema.output.kind,
        primary=bundle.schema.output.primary,
        threshold=threshold,
        by=column,
        preflight=report,
        refused=refused,
        affected=affected.without_sample(),
        done=done,
        flip_share=share,
        slices=slices,
        changes=changes,
    )


def _split(window: pd.DataFrame, served: BundleDescription, sample: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest ``sample`` answered rows: their logged inputs, and what the serving version answered."""
    if window.empty:
        return pd.DataFrame(), pd.DataFrame()
    if "error" in window.columns:
        window = window[window["error"].isna()]
    window = window.tail(sample).reset_index(drop=True)
    outputs = [c for c in served.schema.output.columns if c in window.columns]
    inputs = window.drop(columns=[*outputs, *(c for c in LOGGED_FACTS if c in window.columns)])
    return inputs, window[outputs]


def _gate_slice(served: BundleDescription, inputs: pd.DataFrame) -> str | None:
    """The first slice gate's column of the version serving, when it was logged."""
    for gate in served.gates.get("gates") or []:
        if isinstance(gate, dict) and gate.get("kind") == "slice" and gate.get("by") in inputs.columns:
            return str(gate["by"])
    return None


def _preflight(registry: Repository, bundle: LoadedBundle, inputs: pd.DataFrame, consumer: str) -> PreflightReport:
    from rollbackkit.registry.checks import preflight_bundle  # pydantic: loaded by a preflight only

    return preflight_bundle(registry, bundle, inputs, consumer=consumer)


def _score(bundle: LoadedBundle, inputs: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    """The target's outputs by the serving rule (the check without value domains, its adaptation), or why not."""
    from rollbackkit.bundle.compat import check

    report = check(bundle.schema, inputs, domain=False)
    if report.verdict == "incompatible":
        bad = [f for f in report.findings if f.severity == "incompatible"]
        detail = "; ".join(f"{f.column}: {f.kind}" for f in bad[:3]) + (
            f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        )
        return None, f"{bundle.info.tag} cannot score the logged inputs ({detail})."
    try:
        return bundle.predict(inputs, adaptation=report.adaptation).reset_index(drop=True), None
    except Exception as exc:  # the target's model failing on live rows is what the preview must show
        return None, f"{bundle.info.tag} failed on the logged inputs: {type(exc).__name__}: {exc}".splitlines()[0]


def _compare(
    before: pd.DataFrame,
    after: pd.DataFrame | None,
    bundle: LoadedBundle,
    threshold: float | None,
    by: pd.Series | None,
) -> tuple[float | None, list[SliceDelta], list[Transition]]:
    """``flip_share``, ``slices`` and ``changes`` of the two versions' answers."""
    if after is None:
        return None, [], []
    primary = bundle.schema.output.primary
    numeric = primary in before.columns and primary in after.columns and _numeric(before[primary], after[primary])
    decided: tuple[pd.Series, pd.Series] | None = None
    if threshold is not None and numeric:
        decided = decisions(before[primary], threshold), decisions(after[primary], threshold)
    elif threshold is None and bundle.schema.output.kind == "classification":
        column = "prediction" if "prediction" in after.columns and "prediction" in before.columns else primary
        decided = before[column], after[column]
    flips = flipped(*decided) if decided is not None else None
    slices = deltas_by_slice(before[primary] if numeric else None, after[primary] if numeric else None, flips, by)
    return slices[0].flip_share, slices, transitions(*decided) if decided is not None else []


def _numeric(*series: pd.Series) -> bool:
    return all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in series)
