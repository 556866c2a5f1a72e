"""Run inside the bench-only Evidently venv (pandas < 3): time Evidently on the same data.

Usage: python _evidently_peer.py single DATA.npz | preset DATA.parquet REF_ROWS
Prints one JSON object with median seconds.
"""

import json
import statistics
import sys
import time

import numpy as np
import pandas as pd


def _median(action, runs):
    action()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def single(path, runs):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    data = np.load(path)
    ref = pd.DataFrame({"x": data["ref"]})
    cur = pd.DataFrame({"x": data["cur"]})
    definition = DataDefinition(numerical_columns=["x"])
    ref_ds, cur_ds = (
        Dataset.from_pandas(ref, data_definition=definition),
        Dataset.from_pandas(cur, data_definition=definition),
    )
    out = {}
    for method in ("psi", "ks", "wasserstein"):
        report = Report([ValueDrift(column="x", method=method)])
        out[method] = _median(lambda r=report: r.run(current_data=cur_ds, reference_data=ref_ds), runs)
    out["all_three"] = sum(out.values())
    return out


def preset(path, ref_rows, runs):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    frame = pd.read_parquet(path)
    ref, cur = frame.iloc[:ref_rows], frame.iloc[ref_rows:]
    definition = DataDefinition(numerical_columns=list(frame.columns))
    ref_ds, cur_ds = (
        Dataset.from_pandas(ref, data_definition=definition),
        Dataset.from_pandas(cur, data_definition=definition),
    )
    report = Report([DataDriftPreset()])
    return {"preset": _median(lambda: report.run(current_data=cur_ds, reference_data=ref_ds), runs)}


if __name__ == "__main__":
    mode = sys.argv[1]
    runs = int(sys.argv[-1])
    result = single(sys.argv[2], runs) if mode == "single" else preset(sys.argv[2], int(sys.argv[3]), runs)
    print(json.dumps(result))
