"""The drift panels' categorical PSI and JS are the gate's own numbers on the same rows.

A category the reference never saw is its own category in the gate's PSI; the drift series once
merged every such category into one ``(other)`` bin, so the panel and the gate disagreed. These
tests hold the two equal to 1e-12: on generated frequencies (hypothesis), in every dtype a
categorical feature arrives in (object text with None, pandas ``string``, ``category``, nullable
``boolean``, numpy booleans), after windows are merged, and through both logs' ``binned`` answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit.analysis.drift import categorical_drift, drift, label_drift
from rollbackkit.analysis.drift_series import (
    Binning,
    bin_counts,
    categorical_binning,
    drift_series,
    metric_value,
    other_counts,
)
from rollbackkit.analysis.series import as_labels
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog
from tests.postgres import PgCluster
from tests.test_drift_over_time import wine  # noqa: F401  (the wine project with its log)

ENV = "prod"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KNOWN = ["basic", "gold", "trial"]
UNSEEN = ["platinum", "student", "family", "legacy"]


def panel(metric: str, binning: Binning, reference: Any, current: Any) -> float:
    """The panel's metric of ``current`` against ``reference``, from bin counts as the log gives them."""
    ref_counts, ref_missing = bin_counts(reference, binning)
    counts, missing = bin_counts(current, binning)
    return metric_value(
        metric, binning, ref_counts, counts, ref_missing=ref_missing, missing=missing,
        ref_others=other_counts(reference, binning), others=other_counts(current, binning),
    )  # fmt: skip


def _as(values: list[Any], dtype: str) -> pd.Series:
    if dtype == "bool":
        return pd.Series([bool(v) for v in values if v is not None])
    if dtype == "boolean":
        return pd.Series(values, dtype="boolean")
    return pd.Series(values, dtype=dtype)


def test_unseen_categories_nan_and_every_dtype_give_the_gates_psi_and_js() -> None:
    rng = np.random.default_rng(3)
    reference = list(rng.choice(KNOWN, 400, p=[0.5, 0.2, 0.3])) + [None] * 12
    current = list(rng.choice(KNOWN + UNSEEN, 300, p=[0.3, 0.1, 0.2, 0.2, 0.1, 0.05, 0.05])) + [None] * 30
    for dtype in ("object", "string", "category"):
        ref, cur = _as(reference, dtype), _as(current, dtype)
        gate = categorical_drift(ref, cur)
        assert gate.new_category_share > 0.3  # four unseen categories, each its own in the gate
        binning = categorical_binning(ref)
        assert panel("psi", binning, ref, cur) == pytest.approx(gate.psi, abs=1e-12), dtype
        assert panel("js", binning, ref, cur) == pytest.approx(gate.js, abs=1e-12), dtype
    flags = [True, False, None] * 40
    for dtype in ("boolean", "bool"):
        ref, cur = _as(flags[:60] + [False] * 20, dtype), _as(flags, dtype)
        gate = drift(ref, cur)  # booleans are categorical in the gate
        assert gate.kind == "categorical"
        binning = categorical_binning(ref)
        assert panel("psi", binning, ref, cur) == pytest.approx(gate.psi, abs=1e-12), dtype
    labels_ref, labels_cur = pd.Series([1, 2, 2, 3] * 30), pd.Series([1.0, 2.0, 4.0, 5.0, np.nan] * 20)
    gate = label_drift(labels_ref, labels_cur)  # class labels: 1 and 1.0 one class, 4 and 5 unseen
    binning = categorical_binning(as_labels(labels_ref))
    got = panel("psi", binning, as_labels(labels_ref), as_labels(labels_cur))
    assert got == pytest.approx(gate.psi, abs=1e-12)


def test_a_reference_past_its_kept_categories_still_counts_each_one() -> None:
    rng = np.random.default_rng(5)
    reference = pd.Series(rng.choice([f"c{k}" for k in range(9)], 500), dtype="string")
    current = pd.Series(rng.choice([f"c{k}" for k in range(4, 14)], 400), dtype="string")
    binning = categorical_binning(reference, limit=3)  # six reference categories fall into (other)
    gate = categorical_drift(reference, current)
    assert panel("psi", binning, reference, current) == pytest.approx(gate.psi, abs=1e-12)
    assert panel("js", binning, reference, current) == pytest.approx(gate.js, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    ref_weights=st.lists(st.integers(0, 50), min_size=3, max_size=3),
    cur_weights=st.lists(st.integers(0, 50), min_size=7, max_size=7),
    ref_missing=st.integers(0, 10),
    cur_missing=st.integers(0, 10),
    windows=st.integers(1, 4),
)
def test_random_frequencies_and_merged_windows_keep_the_gates_psi(
    ref_weights: list[int], cur_weights: list[int], ref_missing: int, cur_missing: int, windows: int
) -> None:
    reference = [c for c, k in zip(KNOWN, ref_weights, strict=True) for _ in range(k)] + [None] * ref_missing
    current = [c for c, k in zip(KNOWN + UNSEEN, cur_weights, strict=True) for _ in range(k)] + [None] * cur_missing
    if not any(ref_weights) or not current:
        return
    ref = pd.Series(reference, dtype="string")
    cur = pd.Series(np.random.default_rng(sum(cur_weights)).permutation(np.array(current, dtype=object)))
    binning = categorical_binning(ref)
    gate = categorical_drift(ref, cur)
    assert panel("psi", binning, ref, cur) == pytest.approx(gate.psi, abs=1e-12)
    parts = np.array_split(np.arange(len(cur)), windows)  # the log's windows, then merged into one
    cells = [bin_counts(cur.iloc[p], binning) for p in parts]
    ref_counts, ref_miss = bin_counts(ref, binning)
    series = drift_series(
        "plan", "psi", binning, ref_counts, np.array([[c for c, _ in cells]]), np.array([[m for _, m in cells]]),
        [(START + timedelta(minutes=k), START + timedelta(minutes=k + 1)) for k in range(windows)], ["(all rows)"],
        ref_missing=ref_miss, ref_others=[other_counts(ref, binning)],
        others={(0, w): other_counts(cur.iloc[p], binning) for w, p in enumerate(parts)},
    )  # fmt: skip
    merged = series.regroup([range(windows)], "one window")
    assert merged.values[0, 0] == pytest.approx(gate.psi, abs=1e-12)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def plans_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str, list]]:
    """A log (each backend) of 12 requests whose ``plan`` (category dtype) and ``churn`` output gain
    categories the reference never saw, NaN among them; the raw rows kept beside it."""
    if request.param == "duckdb":
        log: Any = PredictionLog(tmp_path_factory.mktemp("plans") / "predictions.duckdb")
    else:
        postgres: PgCluster = request.getfixturevalue("postgres")
        log = PostgresLog(open_store(postgres.create_database(f"rk_plans_{uuid.uuid4().hex[:8]}")), flush_interval=0.05)
    log.start()
    name, rng, raw = f"plans-{uuid.uuid4().hex[:6]}", np.random.default_rng(11), []
    for k in range(12):
        later = k / 40
        plan = rng.choice(KNOWN + UNSEEN, 25, p=[0.4 - later, 0.2, 0.4 - later, later, later, 0.0, 0.0])
        plan = [None if i % 8 == 0 else p for i, p in enumerate(plan)]
        inputs = pd.DataFrame({"plan": pd.Categorical(plan), "tenure": rng.normal(10, 2, 25)})
        churn = rng.choice(["yes", "no", "maybe"], 25, p=[0.3, 0.7 - later, later])
        outputs = pd.DataFrame({"churn": churn, "p": rng.random(25)})
        when = START + timedelta(minutes=k)
        meta = {
            "request_id": f"q{k:03d}", "time": when, "env": ENV, "name": name, "version": "v1.0.0",
            "bundle_id": "b-v1", "slot": "live", "deployment": f"{name}@v1.0.0", "latency_ms": 1.0,
            "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        log.record(meta, inputs, outputs)
        raw.append((inputs, outputs))
    yield log, name, raw
    log.close()


def test_both_logs_send_each_unseen_category_so_the_series_is_the_gates_psi(plans_log: tuple[Any, str, list]) -> None:
    log, name, raw = plans_log
    reference = pd.Series(["basic", "gold", "trial", None] * 50, dtype="string")
    binning = categorical_binning(reference)
    answer = log.binned(name, ENV, "plan", list(binning.categories), windows=3)
    assert answer["others"] == [] and {w for _, w, _, _ in answer["unseen"]} == {0, 1, 2}  # platinum, student: summed
    current = [inputs["plan"].astype(object) for inputs, _ in raw]
    series = _series(answer, binning, reference)
    for w in range(3):  # request k is in window k // 4 (12 minutes in 3 equal windows)
        rows = pd.concat([c for k, c in enumerate(current) if k // 4 == w], ignore_index=True)
        assert series.values[0, w] == pytest.approx(categorical_drift(reference, rows).psi, abs=1e-12)
    whole = _series(log.binned(name, ENV, "plan", list(binning.categories), windows=3, cuts=[0]), binning, reference)
    assert whole.values[0, 0] == pytest.approx(categorical_drift(reference, pd.concat(current)).psi, abs=1e-12)
    outputs = pd.Series(["yes", "no"] * 40)
    labels = categorical_binning(outputs)
    answer = log.binned(name, ENV, "churn", list(labels.categories), windows=2, output=True, cuts=[0])
    churn = pd.concat([o["churn"] for _, o in raw], ignore_index=True)
    assert _series(answer, labels, outputs).values[0, 0] == pytest.approx(label_drift(outputs, churn).psi, abs=1e-12)


def _series(answer: dict[str, Any], binning: Binning, reference: pd.Series, metric: str = "psi") -> Any:
    """The answer's series, as ``drift_over_time`` builds it."""
    ref_counts, ref_missing = bin_counts(reference, binning)
    others: dict[tuple[int, int], dict[str, int]] = {}
    for s, w, text, k in answer["others"]:
        others.setdefault((s, w), {})[text] = k
    unseen = {(s, w): (k, terms) for s, w, k, terms in answer["unseen"]}
    return drift_series(
        "x", metric, binning, ref_counts, np.array(answer["counts"]), np.array(answer["missing"]),
        [(START, START)] * answer["windows"], answer["slices"], ref_missing=ref_missing,
        ref_others=[other_counts(reference, binning)], others=others, unseen=unseen,
    )  # fmt: skip


IDS = 20_000
"""Ids the reference never saw in the crowded log (the old answer listed them one by one, then cut them)."""


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def crowd_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict]]:
    """A log (each backend) of ``shop``: half plans a/b/c, half one of :data:`IDS` unseen ids, NaN
    now and then; 10 requests of 10,000 rows for a stationary name and a drifted one (DuckDB; the
    store gets a fifth of that)."""
    if request.param == "duckdb":
        log: Any = PredictionLog(tmp_path_factory.mktemp("crowd") / "predictions.duckdb")
        rows = 10_000
    else:
        postgres: PgCluster = request.getfixturevalue("postgres")
        log = PostgresLog(open_store(postgres.create_database(f"rk_crowd_{uuid.uuid4().hex[:8]}")), flush_interval=0.05)
        rows = 2_000
    log.start()
    rng, raw = np.random.default_rng(23), {}
    for name, drifted in (("steady", False), ("drifting", True)):
        raw[name] = []
        for k in range(10):
            later = k / 20 if drifted else 0.0
            plans = rng.choice(["a", "b", "c"], rows, p=[0.5 - later, 0.3, 0.2 + later]).astype(object)
            ids = rng.integers(0, IDS // (1 + drifted * k), rows)
            shop = np.where(rng.random(rows) < 0.5, plans, np.array([f"id{i}" for i in ids], dtype=object))
            shop[rng.random(rows) < 0.02] = None
            inputs = pd.DataFrame({"shop": pd.Series(shop, dtype="string")})
            meta = {
                "request_id": f"{name}{k:03d}", "time": START + timedelta(minutes=k), "env": ENV, "name": name,
                "version": "v1.0.0", "bundle_id": "b-v1", "slot": "live", "deployment": f"{name}@v1.0.0",
                "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
            }  # fmt: skip
            log.record(meta, inputs, pd.DataFrame({"p": rng.random(rows)}))
            raw[name].append(inputs["shop"])
    yield log, raw
    log.close()


@pytest.mark.parametrize("name", ["steady", "drifting"])
def test_twenty_thousand_unseen_ids_keep_every_window_the_gates_psi(
    crowd_log: tuple[Any, dict], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollbackkit.serving.predlog import binning as b

    monkeypatch.setattr(b, "MAX_OTHERS", 500, raising=False)  # the old cut, lowered to this log's size
    log, raw = crowd_log
    reference = pd.Series(["a"] * 500 + ["b"] * 300 + ["c"] * 200 + ["id7"] * 3, dtype="string")
    binning = categorical_binning(reference, limit=2)  # c and id7 past the kept categories: counted one by one
    known = sorted(other_counts(reference, binning))
    answer = log.binned(name, ENV, "shop", list(binning.categories), windows=5, known=known)
    assert {text for _, _, text, _ in answer["others"]} == {"c", "id7"}
    for metric in ("psi", "js"):
        series = _series(answer, binning, reference, metric)
        for w in range(5):  # request k in window k // 2
            rows = pd.concat(raw[name][2 * w : 2 * w + 2], ignore_index=True)
            gate = categorical_drift(reference, rows)
            assert series.values[0, w] == pytest.approx(getattr(gate, metric), abs=1e-12), (metric, w)
    merged = log.binned(name, ENV, "shop", list(binning.categories), windows=5, known=known, cuts=[0, 1, 4])
    series = _series(merged, binning, reference)
    for w, (lo, hi) in enumerate([(0, 2), (2, 8), (8, 10)]):  # an id seen in several windows counts once
        gate = categorical_drift(reference, pd.concat(raw[name][lo:hi], ignore_index=True))
        assert series.values[0, w] == pytest.approx(gate.psi, abs=1e-12), w
    summed = _series(answer, binning, reference).regroup([range(5)], "one")  # no log to ask: said so
    assert "not the gate's" in summed.notes[-1]


def test_drift_over_time_merges_windows_where_the_log_counts_them(
    wine: tuple[Any, pd.DataFrame],  # noqa: F811  (the imported fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default windows (merged by row count) of a column with a category the reference never saw:
    the log counts the merged windows again, so each is the gate's PSI on that window's rows."""
    import rollbackkit
    from rollbackkit.ops import drift_series as ops

    repo, live = wine
    plans = live["plan"].dropna()
    dropped = plans.value_counts().index[-1]  # the reference lacks it: unseen in every window
    profile = ops._reference
    monkeypatch.setattr(ops, "_reference", lambda *a: (lambda r: r[r != dropped])(profile(*a)))
    series = rollbackkit.drift_over_time(repo, "model", "prod", "plan")
    assert series.unseen and len(series.windows) > 1 and not any("not the gate's" in n for n in series.notes)
    registry = ops.Repository(repo)
    reference = ops._reference(ops.describe(registry, ops.resolve(registry, "model@v1.0.0")), "input", "plan")
    ends = np.cumsum(series.n[0] + series.missing[0])
    for w, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):  # the requests of each merged window
        gate = categorical_drift(reference, live["plan"].iloc[lo:hi])
        assert series.values[0, w] == pytest.approx(gate.psi, abs=1e-12), w
