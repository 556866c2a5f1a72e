"""One version's part of a rollback preview: its latest answered rows, scored by the target.

:func:`version_preview` reads the rows one leaving version logged under its current
deployment (the sample's size is the log read's limit; failed requests are left out where the
rows are read), scores their inputs with the target by the serving rule (the check without
value domains, and the adaptation it finds: the one applied and shown), and compares the two
versions' decisions (same class set only) and scores (a numeric output both have only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from rollbackkit.analysis.class_proba import SERVED_CLASS, has_class_probas, served_class_proba
from rollbackkit.analysis.preview import (
    SliceDelta,
    Transition,
    class_mismatch,
    decisions,
    deltas_by_slice,
    flipped,
    one_sided,
    score_column,
    transitions,
)
from rollbackkit.bundle.compat import Adaptation
from rollbackkit.ops.plan_results import PlannedRows
from rollbackkit.ops.preview_groups import SchemaGroup, Scorer, score_groups
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import READ_TIMEOUT, admin_call
from rollbackkit.serving.predlog.outputs import SENT_COLUMNS, sent_names
from rollbackkit.serving.wire import decode_frame

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription, LoadedBundle
    from rollbackkit.bundle.runtime import RuntimeReport
    from rollbackkit.bundle.version import VersionInfo

LOADED = "loaded bundle (hash-verified, in this process)"
"""Where the target scored when it was loaded here (not in a server's warm slot)."""

LOGGED_FACTS = frozenset(
    {"latency_ms", "error", "time", "request_id", "row", "key", "label", "deployment", SENT_COLUMNS}
)
"""Columns of a logged window that are facts about the row, neither inputs nor outputs."""


@dataclass(frozen=True)
class VersionPreview:
    """What a rollback changes for the traffic one leaving version answers.

    Attributes:
        version: The version that loses traffic.
        role: ``canary``, ``live``, or ``replaced`` (the rollback already happened).
        traffic: Its share of the environment's requests in percent (None when it no longer serves).
        n: Its latest answered rows scored by both versions (its refused rows left out).
        first: The sample's first row's time (ISO; None without rows).
        last: The sample's last row's time.
        flip_share: Share of its decisions that flip (None: no decisions, or not comparable).
        slices: Per slice flip share and deltas, ``"all"`` first (empty when not scored).
        changes: The most frequent flips, ``before -> after``.
        refused: Why the decisions were not compared (the target cannot score the rows, or the
            class sets differ); None when they were.
        adaptation: What was done to its logged columns before the target scored them (its
            largest column set's, the one the preflight checks).
        rows: Its rows in the log and what a backfill would rewrite, over every deployment of the
            version (None: no log).
        groups: One per set of columns its requests sent, each checked and scored apart (a
            refused group's rows are left out of ``n``).
        refused_rows: Rows of its sample the target would refuse (its refused groups' rows).
    """

    version: str
    role: str
    traffic: float | None
    n: int
    first: str | None
    last: str | None
    flip_share: float | None
    slices: list[SliceDelta]
    changes: list[Transition]
    refused: str | None
    adaptation: Adaptation = field(default_factory=Adaptation)
    rows: PlannedRows | None = None
    groups: list[SchemaGroup] = field(default_factory=list)
    refused_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        from dataclasses import asdict

        out = asdict(self)
        out["adaptation"] = self.adaptation.to_dict()
        out["groups"] = [g.to_dict() for g in self.groups]
        return out


class Sample(NamedTuple):
    """A leaving version's rows as :func:`split` gives them."""

    inputs: pd.DataFrame
    before: pd.DataFrame
    times: pd.Series
    requests: pd.Series | None
    sent: pd.Series | None = None
    """Each row's recorded input columns (a tuple of names; None: the window did not record them)."""


def split(window: pd.DataFrame, served: BundleDescription) -> Sample:
    """Logged rows as their inputs, what the serving version answered, their times, request ids
    and the input columns each row's request sent."""
    if window.empty:
        return Sample(pd.DataFrame(), pd.DataFrame(), pd.Series(dtype=object), None)
    if "error" in window.columns:  # an older server's window: its failed requests
        window = window[window["error"].isna()]
    window = window.reset_index(drop=True)
    outputs = [c for c in served.schema.output.columns if c in window.columns]
    times = window["time"] if "time" in window.columns else pd.Series([None] * len(window), dtype=object)
    requests = window["request_id"] if "request_id" in window.columns else None
    inputs = window.drop(columns=[*outputs, *(c for c in LOGGED_FACTS if c in window.columns)])
    return Sample(inputs, window[outputs], times, requests, _sent(window, inputs.columns))


def _sent(window: pd.DataFrame, inputs: pd.Index) -> pd.Series | None:
    """Each row's recorded input columns (:data:`SENT_COLUMNS`), or None when the window has none."""
    if SENT_COLUMNS not in window.columns:
        return None
    masks = window[SENT_COLUMNS]
    wanted = {str(c) for c in inputs}
    names = {m: tuple(c for c in sent_names(window.columns, m) if c in wanted) for m in masks.dropna().unique()}
    return masks.map(names).astype(object)


def score(bundle: LoadedBundle, inputs: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None, Adaptation]:
    """The target's outputs by the serving rule (the check without value domains, its adaptation),
    or why not; and the adaptation applied."""
    from rollbackkit.bundle.compat import check

    report = check(bundle.schema, inputs, domain=False)
    if report.verdict == "incompatible":
        bad = [f for f in report.findings if f.severity == "incompatible"]
        detail = "; ".join(f"{f.column}: {f.kind}" for f in bad[:3]) + (
            f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        )
        return None, f"{bundle.info.tag} cannot score the logged inputs ({detail}).", report.adaptation
    try:
        return bundle.predict(inputs, adaptation=report.adaptation).reset_index(drop=True), None, report.adaptation
    except Exception as exc:  # the target's model failing on live rows is what the preview must show
        line = f"{bundle.info.tag} failed on the logged inputs: {type(exc).__name__}: {exc}".splitlines()[0]
        return None, line, report.adaptation


@dataclass(frozen=True)
class Comparison:
    """How two versions' answers are compared: the decision threshold, the score column, the class check."""

    threshold: float | None
    score: str | None
    mismatch: str | None
    classifier: bool


def comparison(served: BundleDescription, target: BundleDescription, threshold: float | None) -> Comparison:
    """What can be compared between the serving version's and the target's outputs.

    Raises:
        InvalidInput: ``threshold`` is given but the target's primary output is a class label.
    """
    from rollbackkit.errors import InvalidInput

    before, after = served.schema.output, target.schema.output
    numeric = score_column(before.columns, after.kind, after.primary, after.columns)
    if threshold is not None and after.kind == "classification" and not after.primary.startswith("proba_"):
        raise InvalidInput(
            f"threshold={threshold:g} cannot apply to {after.primary!r}: it holds class labels of {target.info.tag}.",
            "Leave threshold out: a classifier's decisions are its predicted classes.",
        )
    mismatch = None if threshold is not None else class_mismatch(before.classes, after.classes)
    if threshold is not None and numeric is None:
        mismatch = f"{served.info.tag} has no {after.primary!r} output to put the threshold on"
    classifier = threshold is None and after.kind == "classification" and before.kind == "classification"
    if numeric is None and classifier and mismatch is None and has_class_probas(before.columns, after.columns):
        numeric = SERVED_CLASS  # a multiclass model: deltas of the probability of the class served
    return Comparison(threshold, numeric, mismatch, classifier)


def compare(
    before: pd.DataFrame, after: pd.DataFrame | None, rule: Comparison, by: pd.Series | None
) -> tuple[float | None, list[SliceDelta], list[Transition], str | None]:
    """``flip_share``, ``slices``, ``changes`` and why decisions were not compared (or None)."""
    if after is None:
        return None, [], [], None
    column = rule.score
    numeric = column is not None and column in before.columns and column in after.columns
    decided: tuple[pd.Series, pd.Series] | None = None
    if rule.mismatch is None and rule.threshold is not None and numeric and column is not None:
        decided = decisions(before[column], rule.threshold), decisions(after[column], rule.threshold)
    elif rule.mismatch is None and rule.classifier and "prediction" in before and "prediction" in after:
        decided = before["prediction"], after["prediction"]
    flips = flipped(*decided) if decided is not None else None
    missing = one_sided(*decided) if decided is not None else None
    shared = numeric and column is not None
    old, new = (before[column], after[column]) if shared else (None, None)
    if column == SERVED_CLASS and "prediction" in before:
        old, new = served_class_proba(before, after)
    slices = deltas_by_slice(old, new, flips, by, missing)
    changes = transitions(*decided) if decided is not None else []
    return slices[0].flip_share, slices, changes, rule.mismatch


def read_sample(
    registry: Repository, url: str | None, name: str, env: str, version: str, deployment: str | None, sample: int
) -> pd.DataFrame:
    """The latest ``sample`` answered rows ``version`` logged under ``deployment`` (its current one),
    with their times; under any of its deployments when the current one logged none yet."""
    frame = window(registry, url, name, env, version, deployment, sample)
    if frame.empty and deployment is not None:
        frame = window(registry, url, name, env, version, None, sample)
    return frame


def window(
    registry: Repository, url: str | None, name: str, env: str, version: str, deployment: str | None, sample: int
) -> pd.DataFrame:
    if url is not None:
        fields = {"version": version, "limit": sample, "deployment": deployment, "name": name, "env": env}
        return decode_frame(admin_call(registry.paths, url, "window", fields, timeout=READ_TIMEOUT))
    from rollbackkit.serving.log_operations import log_operation
    from rollbackkit.serving.logs import open_log

    log = open_log(registry.paths, existing=True)
    try:
        answer = log_operation(registry, log, "window", name, env, version, limit=sample, deployment=deployment)
    finally:
        log.close()
    return decode_frame(answer)


class Target:
    """The rollback target: its description, and its bundle loaded here on first need only (a
    preview whose every row a warm slot scores never loads it)."""

    def __init__(self, registry: Repository, info: VersionInfo) -> None:
        from rollbackkit.registry.contents import describe

        self.registry, self.info = registry, info
        self.description = describe(registry, info)
        self._bundle: LoadedBundle | None = None
        self.slot_runtimes: dict[str, RuntimeReport | None] = {}
        """The runtime findings each warm slot that scored rows sent, by where (None: it sent none)."""

    @property
    def loaded(self) -> bool:
        """True once the bundle was loaded in this process."""
        return self._bundle is not None

    def bundle(self) -> LoadedBundle:
        """The bundle, hash-verified, loaded once."""
        from rollbackkit.registry.contents import load

        if self._bundle is None:
            self._bundle = load(self.registry, self.info)
        return self._bundle


def version_part(
    version: str,
    role: str,
    share: float | None,
    sample: Sample,
    scorer: Scorer,
    rule: Comparison,
    column: str | None,
    rows: PlannedRows | None,
    required: frozenset[str] = frozenset(),
    read: frozenset[str] | None = None,
) -> VersionPreview:
    """One leaving version's rows, each column set scored by the target apart, and compared
    (``required``: the leaving version's input columns, sent by every request it answered;
    ``read``: the target's input columns, the only ones that split column sets)."""
    inputs, before, times, requests, sent = sample
    first, last = (str(times.iloc[0]), str(times.iloc[-1])) if len(times) and times.notna().all() else (None, None)
    if inputs.empty:
        return VersionPreview(version, role, share, 0, None, None, None, [], [], "no answered rows", Adaptation(), rows)
    after, kept, groups = score_groups(inputs, requests, scorer, required, sent, read)
    by = inputs[column] if column is not None and column in inputs.columns else None
    if after is not None and not kept.all():  # a refused group's rows are left out of the comparison
        before = before[kept].reset_index(drop=True)
        by = by[kept].reset_index(drop=True) if by is not None else None
    flip, slices, changes, mismatch = compare(before, after, rule, by)
    refused = None
    if after is None:
        refused = groups[0].refused if len(groups) == 1 else f"none of its {len(groups)} column sets could be scored"
    refused_rows = sum(g.rows for g in groups if g.refused is not None)
    n, adaptation = int(kept.sum()), groups[0].adaptation  # the largest set's: the one the preflight checks
    return VersionPreview(
        version, role, share, n, first, last, flip, slices, changes, refused or mismatch, adaptation, rows, groups,
        refused_rows,
    )  # fmt: skip


Scored = tuple[pd.DataFrame | None, str | None, "Adaptation", str]
"""The target's outputs (None: not scored), why not, the adaptation applied, and where it scored."""


def score_target(
    registry: Repository, url: str | None, name: str, env: str, target: Target, inputs: pd.DataFrame
) -> Scored:
    """The target's answers for ``inputs``: from the server's warm slot holding it (it passed its
    golden-sample warm-up there; the bundle is not loaded here), else from the bundle loaded here."""
    from rollbackkit.errors import IncompatibleInput
    from rollbackkit.ops.slot_scoring import score_in_slot

    tag = target.info.tag
    if url is not None and not inputs.empty and over_slot(url, len(inputs)) is None:
        try:
            slot = score_in_slot(registry.paths.root, url, name, env, target.info.version, inputs)
        except IncompatibleInput as exc:
            return None, f"{tag} cannot score the logged inputs ({exc.message})", Adaptation(), url
        if slot is not None:
            target.slot_runtimes[slot.where] = slot.runtime
            return slot.outputs.reset_index(drop=True), None, slot.adaptation, slot.where
    return (*score(target.bundle(), inputs), LOADED)


def over_slot(url: str | None, rows: int) -> str | None:
    """Why a preview with a server loads the target here: a sample over the rows a warm slot scores
    per call (None: the slot may score it)."""
    from rollbackkit.serving.bodies import MAX_SCORE_ROWS

    if url is None or rows <= MAX_SCORE_ROWS:
        return None
    return (
        f"Scored on the loaded bundle, not a warm slot: the {rows:,}-row sample is over the {MAX_SCORE_ROWS:,} "
        f"rows a slot scores per call (a sample of at most {MAX_SCORE_ROWS:,} scores in the slot)."
    )


def no_score(served: BundleDescription, target: BundleDescription) -> str:
    """Why no score delta is shown: the two versions share no numeric score."""
    a, b = served.schema.output, target.schema.output
    if b.kind == "classification" and not b.primary.startswith("proba_"):
        return f"No score delta: {b.primary} holds class labels (class ids are not scores)."
    return f"No score delta: {served.info.tag} has no {b.primary} output ({', '.join(a.columns[:6])})."
