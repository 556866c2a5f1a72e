"""Drift metrics: exact agreement with scipy, a plain PSI, every input kind, NaN policy."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rollbackkit.analysis import drift_formulas
from rollbackkit.analysis.drift import NumericProfile, categorical_drift, drift, numeric_drift
from rollbackkit.analysis.drift_formulas import EPSILON
from rollbackkit.analysis.slices import drift_by

rng = np.random.default_rng(42)
CASES = {
    "normal-shift": (rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 4000)),
    "heavy-ties": (rng.integers(0, 5, 3000).astype(float), rng.integers(0, 7, 2500).astype(float)),
    "constant-vs-constant": (np.full(100, 3.0), np.full(80, 3.0)),
    "constant-vs-spread": (np.full(50, 1.0), rng.normal(1, 1, 70)),
    "tiny": (np.array([1.0]), np.array([2.0, 0.5])),
    "identical": (np.arange(100.0), np.arange(100.0)),
    "disjoint": (rng.uniform(0, 1, 300), rng.uniform(5, 6, 200)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ks_and_wasserstein_match_scipy(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drift_formulas, "_MERGE_CHUNK", 7)  # force many merge chunks and tie edges
    ref, cur = CASES[case]
    result = numeric_drift(ref, cur)
    assert math.isclose(result.ks, stats.ks_2samp(ref, cur).statistic, rel_tol=0, abs_tol=1e-9)
    assert math.isclose(result.wasserstein, stats.wasserstein_distance(ref, cur), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60), st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60))
def test_ks_and_wasserstein_match_scipy_on_generated_samples(ref: list[float], cur: list[float]) -> None:
    result = numeric_drift(np.array(ref), np.array(cur))
    assert math.isclose(result.ks, stats.ks_2samp(ref, cur).statistic, abs_tol=1e-9)
    assert math.isclose(result.wasserstein, stats.wasserstein_distance(ref, cur), rel_tol=1e-9, abs_tol=1e-9)


def plain_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """A straightforward PSI: deciles of the reference, right-inclusive bins, floor 1e-4."""
    edges = sorted(set(np.quantile(reference, [i / 10 for i in range(1, 10)]).tolist()))
    bounds = [-math.inf, *edges, math.inf]
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        p = max(((reference > lo) & (reference <= hi)).mean(), EPSILON)
        q = max(((current > lo) & (current <= hi)).mean(), EPSILON)
        total += (q - p) * math.log(q / p)
    return total


@pytest.mark.parametrize("case", sorted(CASES))
def test_psi_matches_a_plain_implementation(case: str) -> None:
    ref, cur = CASES[case]
    assert math.isclose(numeric_drift(ref, cur).psi, plain_psi(ref, cur), rel_tol=1e-12, abs_tol=1e-12)


def test_tail_metrics_see_what_decile_psi_misses() -> None:
    ref, cur = rng.normal(0, 1, 20000), rng.normal(0, 1, 20000)
    cur[:2000] += 6  # 10% of values move into a fat right tail
    result = numeric_drift(ref, cur)
    assert result.psi < 0.1  # deciles barely move: an aggregate view says "fine"
    assert result.tail_share["above_p99"] > 0.09  # the tail says otherwise
    assert result.quantiles["p99"][1] > result.quantiles["p99"][0] + 3
    assert 0 < result.js < 1
    same = numeric_drift(ref, ref)
    assert (same.psi, same.ks, same.js, same.wasserstein) == (0.0, 0.0, 0.0, 0.0)


def test_nan_and_inf_are_counted_not_silently_dropped() -> None:
    ref = np.array([1.0, 2.0, np.nan, 3.0, np.inf])
    cur = np.array([1.0, np.nan, np.nan, -np.inf, 2.5])
    result = numeric_drift(ref, cur)
    assert result.nan == {"ref": 1, "cur": 2} and result.inf == {"ref": 1, "cur": 1}
    assert (result.n_ref, result.n_cur) == (3, 2)
    assert result.to_dict()["nan"] == {"ref": 1, "cur": 2}


def test_every_input_kind_gives_identical_results(tmp_path: Path) -> None:
    import dask.dataframe as dd

    ref = pd.Series(rng.normal(0, 1, 3000), name="score")
    cur = pd.Series(np.where(rng.uniform(size=2000) < 0.05, np.nan, rng.normal(0.2, 1, 2000)), name="score")
    cur_path = tmp_path / "current.parquet"
    pd.DataFrame({"score": cur, "other": 1}).to_parquet(cur_path)
    expected = numeric_drift(ref.to_numpy(), cur.to_numpy()).to_dict()
    kinds = {
        "pandas": (ref, cur, None),
        "frame": (ref.to_frame(), cur.to_frame(), "score"),
        "pyarrow": (pa.array(ref), pa.chunked_array([pa.array(cur[:700]), pa.array(cur[700:])]), None),
        "arrow-table": (pa.table({"score": ref}), pa.table({"score": cur}), "score"),
        "parquet": (ref, cur_path, "score"),
        "dask": (dd.from_pandas(ref, npartitions=3), dd.from_pandas(cur, npartitions=4), None),
    }
    for kind, (r, c, column) in kinds.items():
        got = numeric_drift(r, c, column).to_dict()
        assert {k: v for k, v in got.items() if k != "column"} == {
            k: v for k, v in expected.items() if k != "column"
        }, kind
    profile = NumericProfile.of(ref)
    assert numeric_drift(profile, cur).to_dict()["psi"] == expected["psi"]


def test_categorical_drift_reports_new_categories_and_shares() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    cur = pd.Series(["a"] * 40 + ["b"] * 40 + ["c"] * 15 + [None] * 5)
    result = categorical_drift(ref, cur)
    assert result.new_categories == ["<missing>", "c"]
    assert math.isclose(result.new_category_share, 0.2)
    assert result.shares["a"] == (0.5, 0.4)
    assert result.psi > 0 and 0 < result.js < 1
    assert isinstance(drift(ref, cur), type(result))


def test_per_slice_drift_finds_the_degraded_segment() -> None:
    ref = pd.DataFrame({"segment": ["x"] * 2000 + ["y"] * 2000, "score": rng.normal(0, 1, 4000)})
    cur = pd.DataFrame(
        {
            "segment": ["x"] * 2000 + ["y"] * 2000 + ["z"] * 100,
            "score": np.concatenate([rng.normal(0, 1, 2000), rng.normal(2, 1, 2000), rng.normal(0, 1, 100)]),
        }
    )
    results = {r.slice["segment"]: r for r in drift_by(ref, cur, "score", by="segment")}
    assert results["y"].psi > 1 > results["x"].psi
    assert results["z"].slice == {"segment": "z", "reference": "all"}
