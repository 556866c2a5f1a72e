"""The gates a version gets when it is registered without ``--gates``.

Besides error rate, p99 latency and prediction drift over all traffic, the defaults watch
each low-cardinality categorical input segment by segment (a ``slice`` gate
``prediction-drift-by-<column>``: PSI of the primary output within each segment against
the same segment of the reference), so one degraded segment fails a gate even while the
aggregate drift stays under its bound; and, for a numeric primary output (a regressor's
prediction, a binary classifier's probability), the share of answers beyond the
reference's p1/p99 (``prediction-tail``).

Thresholds are set so that healthy traffic does not trip them. The PSI of a segment of
``n`` current rows against ``m`` reference rows, on 10 quantile bins, is noise of about
``chi2(9) * (1/n + 1/m)``. Measured at n = 200 rows per segment on healthy traffic (same
distribution as the reference): the demo's churn model (2,000 reference rows, segments of
322 to 492 reference rows), 1,400 segment evaluations: mean 0.065, p99 0.17, max 0.254 (so
a fixed 0.25 bound trips on healthy traffic); breast cancer with a 4-level segment (188
reference rows each): mean 0.097, p99 0.23, max 0.249; 20,000 simulated draws per ``m``:
PSI / (1/n + 1/m) has mean 9.2, p99 23, p99.99 37 to 40. So a column's bound is
``PSI_NOISE * (1/200 + 1/m)`` for its thinnest reference segment ``m`` (:data:`PSI_NOISE` =
40), rounded up to 0.05 and at least 0.25 (churn: 0.3 to 0.35; 188 rows: 0.45); a column
whose bound would exceed :data:`LOOSEST_SLICE_MAX` (segments under 134 reference rows) gets
no gate, being too thin in the reference to judge at 200 rows. Missing values are a
segment of their own, compared with the reference's rows missing there
(:func:`rollbackkit.analysis.slices.same_segment`), and count as a segment for the bound.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rollbackkit.bundle.schema import Schema

MIN_SAMPLES = 200
SLICE_ROWS = 200
"""Rows a segment needs in the window before its drift is judged (``min_slice_samples``)."""
SLICE_MAX = 0.25
"""The per-segment PSI bound when the reference's segments are large enough for it."""
LOOSEST_SLICE_MAX = 0.5
PSI_NOISE = 40.0
MAX_LEVELS = 12
MAX_SLICED_COLUMNS = 5
TAIL_SHARE_MAX = 0.05
"""At most 5% of answers beyond the reference's p99 (or below its p1), where 1% is expected:
at 200 answers, a healthy window exceeds it with probability about 1e-4."""
_CATEGORICAL = frozenset({"category", "string", "bool"})

BASE_GATES: list[dict[str, Any]] = [
    {"name": "error-rate", "kind": "error_rate", "max": 0.01, "severity": "rollback"},
    {"name": "latency-p99", "kind": "latency", "quantile": "p99", "max_ms": 250, "severity": "rollback"},
    {"name": "prediction-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.2, "severity": "rollback"},
]


def default_gates(
    schema: Schema, train_frame: pd.DataFrame, reference: pd.DataFrame | None = None, notes: list[str] | None = None
) -> dict[str, Any]:
    """The ``gates.yaml`` content of a version registered without ``--gates``.

    Args:
        schema: The version's schema (its inputs and output contract).
        train_frame: The training inputs: a column is sliced when it is categorical
            (category, string, object or bool) with 2 to 12 values here (the first
            :data:`MAX_SLICED_COLUMNS` such columns whose reference segments can be judged).
        reference: The rows the gates compare with (the bundle's reference inputs;
            default ``train_frame``): they set each slice gate's bound.
        notes: When given, gets one line per sliceable column left without a slice gate, saying why
            (:func:`no_slice_note`), or one line for them all when the reference is too small for any
            (:func:`too_small_note`): register returns them so the user knows.
    """
    reference = train_frame if reference is None else reference
    gates = [dict(g) for g in BASE_GATES]
    sliced = 0
    ungated: list[str] = []
    said: list[str] = []
    for column in sliceable(schema, train_frame):
        levels = train_frame[column].dropna().astype("object").unique()
        bound = slice_bound(reference[column], levels) if column in reference.columns else None
        if bound is not None and sliced < MAX_SLICED_COLUMNS:
            sliced += 1
            gates.append(
                {
                    "name": f"prediction-drift-by-{column}",
                    "kind": "slice",
                    "by": column,
                    "metric": "psi",
                    "max": bound,
                    "min_slice_samples": SLICE_ROWS,
                    "severity": "rollback",
                }
            )
        else:
            ungated.append(column)
            said.append(no_slice_note(column, reference, levels, bound is not None))
    if notes is not None:
        notes += [too_small_note(ungated, len(reference))] if too_small(ungated, len(reference)) else said
    if numeric_primary(schema):
        gates.append(
            {
                "name": "prediction-tail",
                "kind": "tail",
                "share_above_p99_max": TAIL_SHARE_MAX,
                "share_below_p1_max": TAIL_SHARE_MAX,
                "severity": "rollback",
            }
        )
    return {"min_samples": MIN_SAMPLES, "gates": gates}


def sliceable(schema: Schema, train_frame: pd.DataFrame) -> list[str]:
    """The categorical inputs with 2 to :data:`MAX_LEVELS` values in training, in training order."""
    out = []
    for feature in schema.features:
        if feature.dtype not in _CATEGORICAL or feature.name not in train_frame.columns:
            continue
        if 2 <= train_frame[feature.name].nunique(dropna=True) <= MAX_LEVELS:
            out.append(feature.name)
    return out


def slice_bound(values: pd.Series, levels: Any = ()) -> float | None:
    """The PSI bound of a slice gate over ``values`` (the reference's column), or None for no gate.

    None when the reference lacks one of ``levels`` (the training's values) or has a
    segment (missing values being one) so thin that PSI noise at :data:`SLICE_ROWS` rows
    would exceed :data:`LOOSEST_SLICE_MAX` (see the module docstring).
    """
    missing = int(values.isna().sum())
    counts = values.dropna().astype("object").value_counts()
    counts = counts.reindex(counts.index.union(pd.Index(list(levels), dtype="object")), fill_value=0)
    if counts.empty or counts.min() == 0:
        return None
    thinnest = min(int(counts.min()), missing) if missing else int(counts.min())
    noise = PSI_NOISE * (1 / SLICE_ROWS + 1 / thinnest)
    bound = max(SLICE_MAX, math.ceil(round(noise * 20, 6)) / 20)
    return bound if bound <= LOOSEST_SLICE_MAX else None


def slice_rows_needed() -> int:
    """The fewest reference rows every segment needs for a slice gate (134: see the module docstring)."""
    return math.ceil(1 / (LOOSEST_SLICE_MAX / PSI_NOISE - 1 / SLICE_ROWS))


def no_slice_note(column: str, reference: pd.DataFrame, levels: Any, over_cap: bool) -> str:
    """Why sliceable ``column`` got no default slice gate, one line ending in what to do."""
    lead, todo = f"no slice gate for {column}: ", "; declare one in gates.yaml (--gates) to watch it"
    if over_cap:
        return f"{lead}only the first {MAX_SLICED_COLUMNS} categorical columns get one{todo}"
    if column not in reference.columns:
        return f"{lead}the reference rows lack the column{todo}"
    values = reference[column]
    counts = values.dropna().astype("object").value_counts()
    absent = [v for v in levels if v not in counts.index]
    if absent:
        return f"{lead}value {absent[0]!r} of the training data is not in the reference rows{todo}"
    missing = int(values.isna().sum())
    value, rows = (counts.index[-1], int(counts.iloc[-1])) if not counts.empty else ("", 0)
    what = f"missing values have {missing}" if missing and missing < rows else f"value {value!r} has {rows}"
    return (
        f"{lead}{what} of the {len(values)} reference rows, too few to judge its drift "
        f"(each value needs {slice_rows_needed()}){todo}"
    )


def too_small(columns: list[str], rows: int) -> bool:
    """Whether ``columns`` (two or more left without a slice gate) are so for one reason: a
    reference of ``rows`` rows is too small for any (two values of :func:`slice_rows_needed` each)."""
    return len(columns) > 1 and rows < 2 * slice_rows_needed()


def too_small_note(columns: list[str], rows: int) -> str:
    """One line for every sliceable column a too small reference left without a slice gate."""
    return (
        f"no slice gates for {', '.join(columns)}: the reference holds {rows} rows, too few for any "
        f"(each value of a sliced column needs {slice_rows_needed()}); declare them in gates.yaml (--gates) "
        "to watch them"
    )


def numeric_primary(schema: Schema) -> bool:
    """Whether the primary output is a number (not a classifier's class labels)."""
    output = schema.output
    if output.kind == "classification" and output.primary == "prediction":
        return False
    try:
        dtype = pd.api.types.pandas_dtype(output.dtypes.get(output.primary, "object"))
    except TypeError:
        return False
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
