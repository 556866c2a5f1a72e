"""Schema work at scale: a 1,000-column x 1,000,000-row frame (8 GB of float64).

Measures profile inference (what ``register`` does), the compatibility check (what a
preflight does on live data), adapting a frame (drop 50 columns + cast 100), and the
diff of two such schemas. Target: seconds, not minutes. Writes
``bench/results/schema.json``.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import write_results

ROWS = int(os.environ.get("RBK_BENCH_ROWS", 1_000_000))
COLUMNS = int(os.environ.get("RBK_BENCH_COLUMNS", 1_000))


def _frame(seed: int) -> pd.DataFrame:
    """Contiguous float64 columns, as Parquet readers and dict-built frames give them."""
    rng = np.random.default_rng(seed)
    columns = {f"f{i:04d}": rng.standard_normal(ROWS) for i in range(COLUMNS)}
    return pd.DataFrame(columns, copy=False)


def _timed(action: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    return time.perf_counter() - started, result


def main() -> Path:
    """Run the schema benchmark and write its result file."""
    from rollbackkit.analysis.diff import diff_features
    from rollbackkit.bundle.compat import apply_adaptation, check
    from rollbackkit.bundle.schema import EstimatorView, OutputContract, Schema, infer_features

    frame = _frame(0)
    infer_s, features = _timed(lambda: infer_features(frame))
    schema = Schema(
        features=features,
        estimator=EstimatorView(type="bench"),
        n_rows=ROWS,
        output=OutputContract(
            kind="regression", columns=["prediction"], dtypes={"prediction": "float64"}, primary="prediction"
        ),
    )
    check_s, report = _timed(lambda: check(schema, frame))
    assert report.verdict == "compatible", report.verdict

    # What a newer pipeline sends: 50 extra columns, 100 columns as float32 (no copies of the rest).
    narrowed = {f"f{i:04d}": frame[f"f{i:04d}"].astype("float32") for i in range(COLUMNS // 10)}
    extras = {f"extra{i}": np.zeros(ROWS) for i in range(COLUMNS // 20)}
    live = pd.DataFrame({**{c: narrowed.get(c, frame[c]) for c in frame.columns}, **extras}, copy=False)
    tracemalloc.start()
    adapt_check_s, adapt_report = _timed(lambda: check(schema, live))
    apply_s, adapted = _timed(lambda: apply_adaptation(live, adapt_report.adaptation, schema))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert adapt_report.verdict == "adaptable" and list(adapted.columns) == schema.feature_names

    other = infer_features(frame.iloc[: ROWS // 10] * 1.1)
    diff_s, result = _timed(lambda: diff_features(features, other))
    return write_results(
        "schema",
        {
            "rows": ROWS,
            "columns": COLUMNS,
            "input_gib": round(frame.memory_usage().sum() / 2**30, 2),
            "seconds": {
                "infer_profile": infer_s,
                "check_compatible": check_s,
                "check_adaptable": adapt_check_s,
                "apply_adaptation": apply_s,
                "diff": diff_s,
            },
            "adaptable_case": {
                "dropped": len(adapt_report.adaptation.drop),
                "casts": len(adapt_report.adaptation.casts),
                "peak_python_alloc_gib": round(peak / 2**30, 2),
            },
            "changed_fields_in_diff": len(result.changed),
            "target": "seconds on 1,000 x 1,000,000",
        },
    )


if __name__ == "__main__":
    print(main())
