"""Drift benchmarks, peers re-measured in the same run (results to bench/results/drift.json).

1. One column, 10M reference vs 10M current (N(0,1) vs N(0.1, 1.1)): every rollbackkit
   metric together (PSI, KS + p-value, JS, Wasserstein raw + normalised, tail quantiles,
   tail shares, mean/std) vs ``scipy.stats.ks_2samp`` and ``wasserstein_distance`` alone
   and vs Evidently's PSI, KS and Wasserstein ``ValueDrift`` (its three methods summed).
   Targets: >= 20x faster than Evidently, no slower than ks_2samp alone, extra memory
   under 3x the inputs. Measured cold (both samples raw) and warm (reference profiled
   once, as a bundle's reference is).
2. 1M rows x 50 features, per-feature drift vs Evidently's ``DataDriftPreset``.

Evidently (pandas < 3) runs in its own venv, ``bench/.venv-evidently``, made on first
use; it is never a runtime dependency. Set ``RBK_BENCH_SKIP_EVIDENTLY=1`` to skip it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import median_seconds, write_results

N = int(os.environ.get("RBK_BENCH_DRIFT_N", 10_000_000))
WIDE_ROWS, WIDE_COLUMNS = 1_000_000, 50
PEER_VENV = Path(__file__).parent / ".venv-evidently"
PEER_SCRIPT = Path(__file__).parent / "_evidently_peer.py"


def _peer_python() -> Path | None:
    if os.environ.get("RBK_BENCH_SKIP_EVIDENTLY"):
        return None
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently==0.7.23", "pandas<3"], check=True)
    return python


def _peer(args: list[str]) -> dict[str, float] | None:
    python = _peer_python()
    if python is None:
        return None
    out = subprocess.run([str(python), str(PEER_SCRIPT), *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _peak_extra_bytes(action: object) -> int:
    tracemalloc.start()
    action()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_single(work: Path) -> dict[str, object]:
    """All metrics on one 10M vs 10M column, against scipy and Evidently."""
    from scipy import stats

    from rollbackkit.analysis.drift import NumericProfile, numeric_drift

    rng = np.random.default_rng(0)
    ref, cur = rng.normal(0, 1, N), rng.normal(0.1, 1.1, N)
    profile = NumericProfile.of(ref)
    ours_cold = median_seconds(lambda: numeric_drift(ref, cur), runs=3)
    ours_warm = median_seconds(lambda: numeric_drift(profile, cur), runs=3)
    ks = median_seconds(lambda: stats.ks_2samp(ref, cur), runs=3)
    wasserstein = median_seconds(lambda: stats.wasserstein_distance(ref, cur), runs=1, warmup=0)
    extra = _peak_extra_bytes(lambda: numeric_drift(ref, cur))
    result = numeric_drift(ref, cur)
    assert abs(result.ks - stats.ks_2samp(ref, cur).statistic) < 1e-9
    np.savez(work / "single.npz", ref=ref, cur=cur)
    peer = _peer(["single", str(work / "single.npz"), "3"])
    inputs = ref.nbytes + cur.nbytes
    figures: dict[str, object] = {
        "n": N,
        "seconds": {
            "rollbackkit_all_metrics_cold": ours_cold,
            "rollbackkit_all_metrics_profiled_ref": ours_warm,
            "scipy_ks_2samp": ks,
            "scipy_wasserstein_distance": wasserstein,
        },
        "extra_memory": {"peak_bytes": extra, "inputs_bytes": inputs, "ratio_to_inputs": extra / inputs},
        "ratio_vs_scipy_ks_2samp": ours_cold / ks,
        "targets": {"vs_evidently": ">= 20x faster", "vs_ks_2samp": "<= 1.0x", "memory": "< 3x inputs"},
    }
    if peer is not None:
        figures["evidently_seconds"] = peer
        figures["speedup_vs_evidently_three_methods"] = peer["all_three"] / ours_cold
    return figures


def bench_wide(work: Path) -> dict[str, object]:
    """Per-feature drift on 1M rows x 50 features vs Evidently's DataDriftPreset."""
    from rollbackkit.analysis.drift import numeric_drift

    rng = np.random.default_rng(1)
    half = WIDE_ROWS // 2
    data = {
        f"f{i:02d}": np.concatenate([rng.normal(0, 1, half), rng.normal(0.05 * (i % 5), 1, half)])
        for i in range(WIDE_COLUMNS)
    }
    frame = pd.DataFrame(data)
    ref, cur = frame.iloc[:half], frame.iloc[half:]

    def ours() -> None:
        for column in frame.columns:
            numeric_drift(ref[column].to_numpy(), cur[column].to_numpy())

    seconds = median_seconds(ours, runs=3)
    path = work / "wide.parquet"
    frame.to_parquet(path)
    peer = _peer(["preset", str(path), str(half), "1"])
    figures: dict[str, object] = {
        "rows": WIDE_ROWS,
        "features": WIDE_COLUMNS,
        "seconds": {"rollbackkit_per_feature_all_metrics": seconds},
    }
    if peer is not None:
        figures["evidently_data_drift_preset_seconds"] = peer["preset"]
        figures["speedup_vs_evidently_preset"] = peer["preset"] / seconds
    return figures


def main() -> Path:
    """Run both drift benchmarks and write bench/results/drift.json."""
    with tempfile.TemporaryDirectory(prefix="rbk-drift-") as tmp:
        work = Path(tmp)
        return write_results("drift", {"single_column": bench_single(work), "wide": bench_wide(work)})


if __name__ == "__main__":
    print(main())
