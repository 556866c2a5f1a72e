"""Drift over time: one column's drift against the serving version's reference, per time window
(or one version's rows against ITS reference, as a canary's gate sees them: ``version=``).

The log counts its rows per slice, window and bin where it lives (the server that writes it,
the DuckDB file, or the PostgreSQL store: :mod:`rollbackkit.serving.predlog.binning`); the
reference profile is binned here with the same rule, and the metric of every cell is computed
from counts (:mod:`rollbackkit.analysis.drift_series`). Ten million logged rows never leave the log.

Times: an aware time is taken as it is; a NAIVE ``since``/``until`` (a notebook's ``datetime.now()``,
a pandas Timestamp without tz, an ISO string without offset) is LOCAL time, as the kernel's clock
reads it. The series' windows are UTC (figures say so). With ``since`` and no ``until`` the
windows run up to now; with neither, from the first to the last logged row.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift_series import (
    INNER_BINS,
    Binning,
    DriftSeries,
    bin_counts,
    bin_sums,
    categorical_binning,
    category_text,
    check_metric,
    drift_series,
    numeric_binning,
    other_counts,
)
from rollbackkit.analysis.times import when
from rollbackkit.bundle.model import BundleDescription
from rollbackkit.errors import InvalidInput, VersionNotFound
from rollbackkit.ops.predictions import has_log, log_server
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import READ_TIMEOUT, admin_call
from rollbackkit.serving.log_operations import log_binned
from rollbackkit.serving.logs import open_log
from rollbackkit.serving.predlog.binning import MISSING_SLICE, OTHER_SLICES, PRIMARY

AUTO_WINDOWS = 24
"""Windows at most when ``windows`` is None (each holding enough rows: :meth:`DriftSeries.by_rows`)."""

FINE_WINDOWS = 240
"""Equal windows the log counts when ``windows`` is None, before they are merged by row count."""
MAX_WINDOWS = 1000
"""The most windows :func:`drift_over_time` asks the log for (the server's bound on ``/admin/binned``)."""
MAX_BINS = 200
"""The most equal-width cuts a numeric column's bins add (the log takes at most 257 edges)."""


def drift_over_time(
    repo: str | Path,
    name: str,
    env: str,
    column: str | None = None,
    *,
    metric: str = "psi",
    windows: int | None = None,
    by: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    versions: list[str] | None = None,
    server: str | None = None,
    bins: int = INNER_BINS,
    version: str | None = None,
) -> DriftSeries:
    """Drift of one logged column against the serving version's (or ``version``'s) reference, per window.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        column: An input feature, or the primary output (None: the primary output).
        metric: ``psi``, ``js``, ``wasserstein`` (on bin centres) or ``tail`` (share beyond the
            reference's p1/p99; ``wasserstein`` and ``tail`` need a numeric column).
        windows: Equal time windows between ``since`` and ``until`` (default: first and last row,
            or now). None: up to :data:`AUTO_WINDOWS` windows of about equal row counts, each
            holding at least ``min_rows`` rows when the log has them (said in the notes).
        by: A feature (or ``version``) to slice by: a metric per slice and window.
        since: ISO time (or datetime) of the first window's start (naive: local time).
        until: ISO time (or datetime) of the last window's end (naive: local time; None: now
            when ``since`` is given, else the last row).
        versions: Only rows these versions scored (default: every version's; one version alone
            is also the reference, as ``version``).
        server: The URL of the server for ``env`` (default: the running one; none: the log).
        bins: Equal-width cuts between the reference's p1 and p99 added to the gate's decile
            edges (numeric columns; PSI and JS are on the deciles whatever ``bins``).
        version: Measure against this version's reference, its columns (a feature only a canary
            has) and its drift gate's threshold; its rows only unless ``versions`` says otherwise
            (default: the serving version's reference; a version nothing serves any more is fine).

    Returns:
        A :class:`~rollbackkit.analysis.drift_series.DriftSeries`.

    Raises:
        InvalidInput: ``windows`` or ``bins`` not a whole number in range (1-1,000, 1-200), unknown
            column or metric (the hint names the known ones), no reference
            profile for the column, no prediction log, or nothing logged in the range.
        VersionNotFound: ``name`` is unknown in ``env``, or nothing serves it there.
        ServerError: The server refused or did not answer.
    """
    if windows is not None:
        _whole("windows", windows, MAX_WINDOWS, "Pass equal time windows, or none for about 24 of equal row counts.")
    _whole("bins", bins, MAX_BINS, f"Pass the equal-width cuts added to the gate's deciles (default {INNER_BINS}).")
    registry = Repository(repo)
    name, env = validate_name(name), validate_name(env, "environment name")
    require_known(registry, name, env)
    chosen = version or (versions[0] if versions is not None and len(versions) == 1 else None)
    serving = Deployments(registry).serving(name, env)
    if chosen is None and serving is None:
        raise VersionNotFound(
            f"Nothing serves {name} in {env}: there is no reference to compare with.",
            "Deploy a version first, or name one: version='vX.Y.Z'.",
        )
    measured = chosen or (serving.version if serving is not None else "")
    bundle = describe(registry, resolve(registry, f"{name}@{measured}"))
    shown, log_column, output, reference = _target(bundle, column)
    if by is not None and by == shown:
        raise InvalidInput(f"column={shown!r} is also the slice column (by).", "Slice by another column.")
    binning = categorical_binning(reference) if output or _categorical(reference) else numeric_binning(reference, bins)
    check_metric(metric, binning)
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        raise InvalidInput(f"There is no prediction log for {name} in {env}.", "Serve it with a log and send traffic.")
    fields = {
        "column": log_column,
        "edges": list(binning.edges or binning.categories),
        "start": _iso(since, "since"),
        "end": _iso(until if until is not None or since is None else datetime.now(UTC), "until"),
        "windows": FINE_WINDOWS if windows is None else windows,
        "by": by,
        "versions": versions if versions is not None or chosen is None else [bundle.version],
        "output": output,
    }
    if binning.kind == "categorical":
        fields["known"] = sorted(other_counts(reference, binning))
    found = _binned(registry, url, name, env, fields)
    if not found["slices"]:
        span = f" between {fields['start'] or 'the start'} and {fields['end'] or 'now'}" if since or until else ""
        raise InvalidInput(f"Nothing was logged for {name} in {env}{span}.", "Send traffic, or widen since/until.")

    def counted(found: dict[str, Any], notes: list[str]) -> DriftSeries:
        series = _series(found, shown, metric, binning, reference, bundle, by, notes)
        if not series.unseen:
            return series
        cuts = found.get("cuts") or list(range(found["windows"]))

        def regrouper(groups: list[range], note: str) -> DriftSeries:  # unseen sums: the log merges the windows
            asked = {**fields, "start": found["start"], "end": found["end"], "cuts": [cuts[g[0]] for g in groups]}
            return counted(_binned(registry, url, name, env, asked), [*series.notes, note])

        return replace(series, regrouper=regrouper)

    series = counted(found, [])
    return series if windows is not None else series.by_rows(AUTO_WINDOWS)


def _whole(what: str, value: object, most: int, hint: str) -> None:
    """Refuse ``value`` unless it is a whole number from 1 to ``most`` (one line naming the parameter)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= most:
        raise InvalidInput(f"{what} must be a whole number from 1 to {most:,}, not {value!r}.", hint)


def _target(bundle: BundleDescription, column: str | None) -> tuple[str, str, bool, pd.Series]:
    """The column shown, the log's column for it, whether it is read from the outputs, its reference."""
    from rollbackkit.analysis.gates import is_class_label

    schema = bundle.schema
    primary = schema.output.primary
    features = schema.feature_names
    if column is None or column in (primary, PRIMARY):
        reference = _reference(bundle, "output", primary)
        label = is_class_label(bundle, primary) or _categorical(reference)
        return primary, (primary if label else PRIMARY), label, reference
    if column not in features:
        raise InvalidInput(
            f"{bundle.info.tag} has no input feature or primary output {column!r}.",
            f"Known columns: {', '.join([primary, *features][:25])}.",
        )
    return column, column, False, _reference(bundle, "input", column)


def _reference(bundle: BundleDescription, part: str, column: str) -> pd.Series:
    try:
        frame = bundle.reference_part(part)
    except Exception:  # a bundle registered without reference data
        frame = pd.DataFrame()
    if column not in frame.columns or frame[column].dropna().empty:
        raise InvalidInput(
            f"{bundle.info.tag} has no reference profile for {column!r}: nothing to compare drift with.",
            "Register the version with reference data (rollbackkit register --reference ...).",
        )
    return frame[column]


def _categorical(values: pd.Series) -> bool:
    """Text, booleans and categories are compared by category shares; numbers by bins."""
    return pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values)


def _iso(moment: str | datetime | None, what: str) -> str | None:
    """An aware ISO time in UTC; a naive one is local time (:func:`rollbackkit.analysis.times.when`)."""
    stamp = when(moment, what)
    return None if stamp is None else stamp.isoformat()


def _binned(registry: Repository, url: str | None, name: str, env: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The log's counts: through the server that writes it, else the file or the store."""
    if url is not None:
        return admin_call(registry.paths, url, "binned", {**fields, "name": name, "env": env}, timeout=READ_TIMEOUT)
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        return log_binned(log, name, env, fields)
    finally:
        log.close()


def _series(
    found: dict[str, Any],
    column: str,
    metric: str,
    binning: Binning,
    reference: pd.Series,
    bundle: BundleDescription,
    by: str | None,
    before: list[str],
) -> DriftSeries:
    start, end = (datetime.fromisoformat(found[k]) for k in ("start", "end"))
    cuts = found.get("cuts") or list(range(found["windows"]))
    fine = int(found.get("fine_windows") or len(cuts))
    step = (end - start) / fine
    bounds = [*cuts, fine]
    windows = [(start + step * bounds[w], start + step * bounds[w + 1]) for w in range(len(cuts))]
    slices = list(found["slices"])
    groups = _reference_slices(bundle, by, len(reference))
    parts, notes = _slice_references(reference, groups, slices)
    notes = before or notes
    sides = [bin_counts(part, binning) for part in parts]
    sums = found.get("sums") if binning.kind == "numeric" else None
    per_slice = groups is not None
    if binning.kind == "numeric" and sums is None:
        notes.append("wasserstein places a window's outer-bin mass at the reference's (it caps far shifts)")
    others: dict[tuple[int, int], dict[str, int]] = {}
    for s, w, text, k in found.get("others") or []:
        others.setdefault((int(s), int(w)), {})[str(text)] = int(k)
    unseen = {(int(s), int(w)): (int(k), float(terms)) for s, w, k, terms in found.get("unseen") or []}
    return drift_series(
        column, metric, binning, np.array([c for c, _ in sides]), np.asarray(found["counts"], dtype="int64"),
        np.asarray(found["missing"], dtype="int64"), windows, slices,
        version=bundle.version, by=by, threshold=_threshold(bundle, column, metric, by), notes=notes,
        ref_missing=np.array([m for _, m in sides]), sums=sums, per_slice_reference=per_slice,
        ref_sums=np.array([bin_sums(part, binning) for part in parts]) if binning.kind == "numeric" else None,
        others=others, ref_others=[other_counts(p, binning) for p in parts] if binning.kind == "categorical" else [],
        unseen=unseen,
    )  # fmt: skip


def _reference_slices(bundle: BundleDescription, by: str | None, rows: int) -> pd.Series | None:
    """The reference's ``by`` values as the log's slice texts (None: ``by`` is no reference input)."""
    if by is None:
        return None
    try:
        inputs = bundle.reference_part("input")
    except Exception:  # a bundle registered without reference data
        return None
    if by not in inputs.columns or len(inputs) != rows:
        return None
    return pd.Series([MISSING_SLICE if pd.isna(v) else category_text(v) for v in inputs[by].astype(object)])


def _slice_references(
    reference: pd.Series, groups: pd.Series | None, slices: list[str]
) -> tuple[list[pd.Series], list[str]]:
    """Each slice's reference rows (the same slice of the reference), with notes; the whole
    reference for every slice when ``by`` is no reference input (or a slice has no reference row)."""
    values = reference.reset_index(drop=True)
    if groups is None:
        return [values] * len(slices), ["each slice vs the whole reference"] if slices[:1] != ["(all rows)"] else []
    named = set(slices) - {OTHER_SLICES}
    parts = [values[~groups.isin(named)] if s == OTHER_SLICES else values[groups == s] for s in slices]
    lacking = [s for s, part in zip(slices, parts, strict=True) if part.dropna().empty]
    notes = [f"no reference rows for {', '.join(lacking[:3])}: those slices vs the whole reference"] if lacking else []
    return [values if part.dropna().empty else part for part in parts], notes


def _threshold(bundle: BundleDescription, column: str, metric: str, by: str | None = None) -> float | None:
    """The ``max`` of ``bundle``'s drift gate on ``column`` with this metric: sliced by ``by``, the
    slice gate by that column first (None when no gate declares one)."""
    primary = bundle.schema.output.primary
    gates = [g for g in (bundle.gates or {}).get("gates") or [] if isinstance(g, dict) and "max" in g]
    for gate in gates:
        sliced = gate.get("kind") == "slice" and by is not None and gate.get("by") in (by, [by])
        if sliced and gate.get("metric") == metric and (gate.get("column") or primary) == column:
            return float(gate["max"])
    for gate in gates:
        if gate.get("metric", "psi") != metric:
            continue
        kind = gate.get("kind")
        if kind == "prediction_drift" and (gate.get("column") or primary) == column:
            return float(gate["max"])
        features = gate.get("features", "all")
        if kind == "feature_drift" and column != primary and (features == "all" or column in features):
            return float(gate["max"])
    return None
