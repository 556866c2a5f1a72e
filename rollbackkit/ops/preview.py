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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.bundle.compat import Adaptation
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.log_results import AffectedRows
from rollbackkit.ops.plans import planned_rows
from rollbackkit.ops.predictions import has_log, log_call, log_server
from rollbackkit.ops.preview_groups import Scorer, schema_masks
from rollbackkit.ops.preview_leaving import earlier, leaving_versions
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
from rollbackkit.ops.results import from_server
from rollbackkit.ops.runbook_targets import rollback_target
from rollbackkit.ops.traffic import server_for
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Serving
from rollbackkit.serving.bodies import MAX_SAMPLE
from rollbackkit.serving.client import READ_TIMEOUT
from rollbackkit.serving.client import status as server_status

if TYPE_CHECKING:
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.analysis.preview import SliceDelta, Transition
    from rollbackkit.bundle.model import BundleDescription

TARGET_WORDS = "to_version='vX.Y.Z'"
"""How a preview's hints name a target (the API's and the panel's words; a runbook says ``-p to_version=``)."""

SAMPLE = 2000
"""The latest answered rows a preview scores per leaving version, by default."""


@dataclass(frozen=True)
class RollbackPreview(HasCard):
    """What rolling ``name`` in ``env`` back to ``to_version`` would change.

    Attributes:
        name: The bundle name.
        env: The environment.
        to_version: The rollback target.
        parts: One :class:`~rollbackkit.ops.preview_parts.VersionPreview` per version losing
            traffic (the canary first), each with its rows, traffic share and flip share.
        kind: ``classification`` or ``regression`` (the target's output contract).
        primary: The target's primary output.
        score: The numeric output both versions have, whose deltas are shown (None: none).
        threshold: The decision threshold on ``score`` (None: a classifier's class).
        by: The slice column (None: no slices).
        preflight: The target's preflight on the first sample: the verdict (None: nothing scored).
        where: Where the target scored the first version's rows: :data:`LOADED`, or a server's
            warm slot holding it (``warm standby slot green of http://...``).
        done: True when the rollback already happened (the rows are the version it replaced).
        note: What the preview could not show and why (a shadow only cancelled, no shared score), and
            why it loaded the target although a server holds it warm (a sample over a slot's limit).
        from_version: The first version losing traffic (the canary, else the live version; a
            cancelled shadow's version when nothing else leaves).
        loaded: Whether the target's bundle was loaded in this process (False when a warm slot
            scored every row and the preflight read its schema only).
    """

    name: str
    env: str
    to_version: str
    parts: list[VersionPreview]
    kind: str
    primary: str
    score: str | None
    threshold: float | None
    by: str | None
    preflight: PreflightReport | None
    from_version: str
    where: str = LOADED
    done: bool = False
    note: str | None = None
    loaded: bool = True

    def card(self) -> Card:
        """The flip share, the versions losing traffic, the slices and the most frequent flips."""
        from rollbackkit.ops.result_cards import preview_card

        return preview_card(self)

    @property
    def _main(self) -> VersionPreview | None:
        return self.parts[0] if self.parts else None

    @property
    def from_versions(self) -> list[str]:
        """Every version losing (or, after the rollback, that lost) traffic, the canary first."""
        return [p.version for p in self.parts] or [self.from_version]

    @property
    def n(self) -> int:
        """Rows scored for :attr:`from_version`."""
        return self._main.n if self._main else 0

    @property
    def flip_share(self) -> float | None:
        """Share of :attr:`from_version`'s decisions that flip (0.0 when only a shadow is cancelled)."""
        return self._main.flip_share if self._main else 0.0

    @property
    def slices(self) -> list[SliceDelta]:
        """:attr:`from_version`'s per slice flip share and deltas, ``"all"`` first."""
        return self._main.slices if self._main else []

    @property
    def changes(self) -> list[Transition]:
        """:attr:`from_version`'s most frequent flips."""
        return self._main.changes if self._main else []

    @property
    def refused(self) -> str | None:
        """Why :attr:`from_version`'s decisions were not compared (None: they were)."""
        return self._main.refused if self._main else None

    @property
    def total(self) -> float | None:
        """Share of all the environment's decisions that flip: each leaving version's flip share
        weighted by its traffic share (None when one is unknown)."""
        if not self.parts:
            return 0.0
        shares = [(p.traffic, p.flip_share) for p in self.parts]
        if any(t is None or f is None for t, f in shares):
            return None
        return sum(t * f for t, f in shares if t is not None and f is not None) / 100

    @property
    def verdict(self) -> str:
        """The preflight verdict: ``compatible``, ``adaptable``, ``incompatible`` (``skipped``: nothing scored)."""
        return self.preflight.verdict if self.preflight is not None else "skipped"

    @property
    def adaptation(self) -> Adaptation:
        """What was done to :attr:`from_version`'s logged columns before the target scored them."""
        return self._main.adaptation if self._main else Adaptation()

    @property
    def rewrite(self) -> int | None:
        """Rows a backfill would rewrite, over every leaving version (None: no log)."""
        rows = [p.rows for p in self.parts if p.rows is not None]
        return sum(r.backfill for r in rows) if rows else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what a runbook records): versions, flip shares, verdict, slices, backfill rows."""
        main = self._main.to_dict() if self._main else {}
        return {
            "name": self.name,
            "env": self.env,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "n": self.n,
            "flip_share": self.flip_share,
            "total": self.total,
            "threshold": self.threshold,
            "score": self.score,
            "verdict": self.verdict,
            "adaptation": self.adaptation.to_dict(),
            "refused": self.refused,
            "by": self.by,
            "slices": main.get("slices", []),
            "changes": main.get("changes", []),
            "parts": [p.to_dict() for p in self.parts],
            "rewrite": self.rewrite,
            "where": self.where,
            "done": self.done,
            "note": self.note,
            "loaded": self.loaded,
            "from_versions": self.from_versions,
        }


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
    column = by if by is not None else _gate_slice(first)
    parts: list[VersionPreview] = []
    report, where, why = None, LOADED, None
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
        )
        if report is None and part.groups:
            main = part.groups[0]
            where, why = main.where or LOADED, over_slot(shifter, main.rows)
            columns, rows_of = schema_masks(inputs, split_rows[3], frozenset(served.schema.feature_names))[0]
            features = inputs.loc[rows_of, columns].reset_index(drop=True)  # the main column set's own rows
            report = _preflight(registry, goal, features, f"{name}@{version}", slot=where != LOADED)
        parts.append(part)
    rule = comparison(first, goal.description, threshold)
    notes = (None if rule.score is not None else no_score(first, target_info), why, earlier(state, done, leaving))
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


def _gate_slice(served: BundleDescription) -> str | None:
    """The first slice gate's column of the version losing traffic."""
    for gate in served.gates.get("gates") or []:
        if isinstance(gate, dict) and gate.get("kind") == "slice" and gate.get("by"):
            return str(gate["by"])
    return None


def _preflight(
    registry: Repository, goal: Target, inputs: pd.DataFrame, consumer: str, *, slot: bool
) -> PreflightReport:
    """The target's preflight on the sample: without loading it when a warm slot scored it
    (:func:`~rollbackkit.ops.slot_scoring.slot_preflight`), else on the loaded bundle."""
    if slot and not goal.loaded:
        from rollbackkit.ops.slot_scoring import slot_preflight

        return slot_preflight(registry.paths.root, goal.description, inputs, consumer)
    from rollbackkit.registry.checks import preflight_bundle  # pydantic: loaded by a preflight only

    return preflight_bundle(registry, goal.bundle(), inputs, consumer=consumer)
