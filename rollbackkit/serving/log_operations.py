"""The admin API's prediction-log calls, answered over an open log: ``affected``,
``backfill``, ``drift``, ``window`` and ``gates``.

A server answers them over the log it writes; the CLI (through :mod:`rollbackkit.ops.predictions`)
over the log file when no server writes it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rollbackkit.errors import IncompatibleInput, VersionNotFound
from rollbackkit.registry.assignments import Deployments, resolve
from rollbackkit.registry.contents import describe, load
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.predlog.queries import output_counts, primary_outputs
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.wire import encode_frame

WINDOW_LIMIT = 5_000


def log_operation(
    registry: Repository,
    log: PredictionStore,
    operation: str,
    name: str,
    env: str,
    version: str,
    since: str | None = None,
    *,
    limit: int | None = None,
    deployment: str | None = None,
) -> dict[str, Any]:
    """``affected``, ``backfill``, ``drift``, ``window`` or ``gates`` against an open prediction log
    (in a server or the CLI).

    ``drift`` takes a comma-separated list of versions in ``version``. ``window`` with a
    ``limit`` is a sample: the latest ``limit`` answered rows (of ``deployment`` when given),
    with their times and the input columns each row's request sent; without it, the latest
    :data:`WINDOW_LIMIT` rows, failed ones included.
    """
    from rollbackkit.refs import Version

    if operation == "drift":
        return log_drift(registry, log, name, env, [v for v in version.split(",") if v])
    if operation == "gates":
        from rollbackkit.serving.gating import judge_logged

        return judge_logged(registry, log, describe(registry, resolve(registry, f"{name}@{version}")), env).to_dict()
    if operation == "window" and limit is not None:
        sample = log.window(name, env, version=version, deployment=deployment, limit=limit, answered=True, sent=True)
        return encode_frame(sample)
    if operation == "window":
        frame = log.window(name, env, version=version, limit=WINDOW_LIMIT)
        return encode_frame(frame.drop(columns=["time"], errors="ignore"))
    Version.parse(version)
    if operation == "affected":
        return log.affected(name, env, version, since=since)
    serving = Deployments(registry).serving(name, env)
    if serving is None:
        raise VersionNotFound(
            f"Nothing serves {name} in {env}; there is no version to re-score with.", "Deploy or roll back first."
        )
    bundle = load(registry, resolve(registry, f"{name}@{serving.version}"))

    def rescore(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
        from rollbackkit.bundle.compat import check

        report = check(bundle.schema, inputs, domain=False)
        if report.verdict == "incompatible":
            raise IncompatibleInput(f"{bundle.info.tag} cannot score the stored inputs.", "See rollbackkit check.")
        return bundle.predict(inputs, adaptation=report.adaptation), bundle.version, bundle.bundle_id

    result = log.backfill(name, env, version, rescore, primary=bundle.schema.output.primary)
    Journal(registry.paths.journal).append(
        "backfill", name=name, env=env, version=version, rescored_with=serving.version, **result
    )
    return result


def log_binned(log: PredictionStore | None, name: str, env: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``binned``: counts per slice, window and bin of one column, counted in the log
    (:mod:`~rollbackkit.serving.predlog.binning`); ``fields`` are the admin body's."""
    if log is None:
        from rollbackkit.errors import RollbackkitError

        raise RollbackkitError("This server runs without a prediction log.", "Restart it without --no-log.")
    return log.binned(name, env, **fields)


def log_drift(
    registry: Repository, log: PredictionStore, name: str, env: str, versions: list[str], bins: int = 20
) -> dict[str, Any]:
    """Per version: its logged primary predictions against its reference, with PSI.

    A numeric primary (a probability, a regression value) is binned in numpy (shared edges
    over both samples), so any number of rows becomes a few numbers; class labels (strings,
    booleans, integers) are counted per class in the log. Returns ``{version: {"kind",
    "column", "n", "psi", "bins", "reference", "current"}}``: ``bins`` are the left bin edges
    or the class names, ``reference`` and ``current`` the shares per bin (numeric results
    also give all ``edges``). A version with no logged rows is left out.
    """
    from rollbackkit.analysis.gates import is_class_label
    from rollbackkit.analysis.series import is_numeric

    out: dict[str, Any] = {}
    for version in versions:
        bundle = describe(registry, resolve(registry, f"{name}@{version}"))
        primary = bundle.schema.output.primary
        reference = bundle.reference_part("output")[primary]
        if is_class_label(bundle, primary) or not is_numeric(reference):
            item = _label_shares(log, name, env, version, primary, reference)
        else:
            item = _numeric_shares(log, name, env, version, primary, reference, bins)
        if item is not None:
            out[version] = item
    return out


def _numeric_shares(
    log: PredictionStore, name: str, env: str, version: str, primary: str, reference: pd.Series, bins: int
) -> dict[str, Any] | None:
    import numpy as np

    from rollbackkit.analysis.drift import numeric_drift
    from rollbackkit.analysis.histogram import shared_histogram

    logged = primary_outputs(log, name, env, version)
    current = logged.to_numpy(dtype="float64", na_value=np.nan)
    current = current[np.isfinite(current)]
    expected = reference.to_numpy(dtype="float64", na_value=np.nan)
    expected = expected[np.isfinite(expected)]
    if not len(current) or not len(expected):
        return None
    histogram = shared_histogram([expected, current], bins)
    if histogram is None:
        return None
    edges, shares = histogram.edges, histogram.shares
    return {
        "kind": "numeric",
        "column": primary,
        "n": len(current),
        "psi": round(float(numeric_drift(expected, current).psi), 6),
        "bins": edges[:-1].round(6).tolist(),
        "edges": edges.round(6).tolist(),
        "reference": shares[0].round(6).tolist(),
        "current": shares[1].round(6).tolist(),
    }


def _label_shares(
    log: PredictionStore, name: str, env: str, version: str, primary: str, reference: pd.Series
) -> dict[str, Any] | None:
    """Class shares of a label column, counted in the log from each row's typed outputs
    (``primary_output`` holds no copy of a text label), with PSI as the gate computes it."""
    import json

    from rollbackkit.analysis.drift_formulas import psi
    from rollbackkit.analysis.series import as_labels

    counts = output_counts(log, name, env, version, primary)
    counts = counts[counts["value"].notna() & (counts["value"] != "null")]
    expected = as_labels(reference).dropna().value_counts()
    if counts.empty or expected.empty:
        return None
    labels = as_labels(pd.Series([json.loads(v) for v in counts["value"]], dtype=object))
    current = counts["n"].groupby(labels.to_numpy()).sum()  # 1 and 1.0 are one class
    classes = sorted(set(expected.index) | set(current.index))
    shares = [(x.reindex(classes, fill_value=0) / x.sum()).to_numpy(dtype="float64") for x in (expected, current)]
    return {
        "kind": "categorical",
        "column": primary,
        "n": int(current.sum()),
        "psi": round(psi(shares[0], shares[1]), 6),
        "bins": classes,
        "reference": shares[0].round(6).tolist(),
        "current": shares[1].round(6).tolist(),
    }
