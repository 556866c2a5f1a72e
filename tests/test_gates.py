"""Quality gates declared before deployment: validated at register time, evaluated on windows.

The headline: silent degradation. The average is fine, the worst slice is not, and only a
slice gate sees it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.analysis.gates import evaluate
from rollbackkit.demo.data import BASE_FEATURES, TARGET, churn_frame, churn_pipeline
from rollbackkit.errors import InvalidInput

from .conftest import run_cli

GATES = """\
min_samples: 200
gates:
  - name: latency-p99
    kind: latency
    quantile: p99
    max_ms: 50
  - name: errors
    kind: error_rate
    max: 0.02
  - name: score-drift
    kind: prediction_drift
    metric: psi
    max: 0.2
  - name: feature-drift
    kind: feature_drift
    metric: psi
    max: 0.25
    severity: warn
  - name: score-tail
    kind: tail
    share_above_p99_max: 0.05
  - name: accuracy
    kind: label_metric
    metric: accuracy
    min: 0.8
  - name: accuracy-by-contract
    kind: slice
    by: contract
    metric: accuracy
    min: 0.7
    min_slice_samples: 50
"""


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(4000, seed=11)


@pytest.fixture
def gated(project: Path, churn: pd.DataFrame, tmp_path: Path) -> Registry:
    gates = tmp_path / "gates.yaml"
    gates.write_text(GATES)
    model = churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], churn[TARGET])
    registry = Registry(project)
    registry.register("churn", model, churn[[*BASE_FEATURES, TARGET]], target=TARGET, gates=gates, version="v1.0.0")
    return registry


def window_for(registry: Registry, live: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """What the prediction log holds for a healthy hour: inputs, outputs, latency, errors."""
    bundle = registry.load("churn@v1.0.0")
    rng = np.random.default_rng(seed)
    outputs = bundle.predict(live[BASE_FEATURES])
    return pd.concat([live[BASE_FEATURES].reset_index(drop=True), outputs.reset_index(drop=True)], axis=1).assign(
        latency_ms=rng.gamma(2.0, 4.0, len(live)), error=None
    )


def with_labels(window: pd.DataFrame, accuracy_by_contract: dict[str, float], seed: int = 1) -> pd.DataFrame:
    """Labels that agree with the prediction at a chosen rate per contract type."""
    rng = np.random.default_rng(seed)
    agree = rng.uniform(size=len(window)) < window["contract"].map(accuracy_by_contract).to_numpy()
    prediction = window["prediction"].to_numpy()
    return window.assign(label=np.where(agree, prediction, 1 - prediction))


def test_silent_degradation_fails_the_slice_gate_while_the_average_passes(gated: Registry) -> None:
    live = churn_frame(6000, seed=12)
    healthy = with_labels(window_for(gated, live), {"month-to-month": 0.88, "one-year": 0.88, "two-year": 0.88})
    # Same average, but two-year customers (the smallest segment) now get it badly wrong.
    degraded = with_labels(window_for(gated, live), {"month-to-month": 0.945, "one-year": 0.94, "two-year": 0.55})
    bundle = gated.describe("churn@v1.0.0")

    before = {g.name: g for g in evaluate(bundle, healthy).gates}
    after = {g.name: g for g in evaluate(bundle, degraded).gates}
    assert abs(after["accuracy"].observed - before["accuracy"].observed) < 0.02  # the average did not move
    assert after["accuracy"].status == before["accuracy"].status == "pass"
    assert before["accuracy-by-contract"].status == "pass"
    assert after["accuracy-by-contract"].status == "fail"
    assert after["accuracy-by-contract"].evidence["worst_slice"] == {"contract": "two-year"}
    assert evaluate(bundle, degraded).decision == "rollback"


def test_a_healthy_window_passes_every_gate(gated: Registry) -> None:
    window = with_labels(
        window_for(gated, churn_frame(3000, seed=13)), {c: 0.9 for c in ("month-to-month", "one-year", "two-year")}
    )
    report = evaluate(gated.describe("churn@v1.0.0"), window)
    assert {g.name: g.status for g in report.gates} == {
        name: "pass"
        for name in (
            "latency-p99",
            "errors",
            "score-drift",
            "feature-drift",
            "score-tail",
            "accuracy",
            "accuracy-by-contract",
        )
    }
    assert report.decision == "pass"


def test_drift_latency_errors_and_tails_each_trip_their_gate(gated: Registry, tmp_path: Path) -> None:
    base = window_for(gated, churn_frame(3000, seed=14))
    bundle = gated.describe("churn@v1.0.0")
    shifted = base.assign(proba_1=np.clip(base["proba_1"] + 0.35, 0, 1))
    slow = base.assign(latency_ms=base["latency_ms"] + 80)
    failing = base.assign(error=np.where(np.arange(len(base)) % 10 == 0, "TimeoutError", None))
    tailed = base.assign(proba_1=np.where(np.arange(len(base)) % 8 == 0, 1.0, base["proba_1"]))
    cases = {"score-drift": shifted, "latency-p99": slow, "errors": failing, "score-tail": tailed}
    for gate, window in cases.items():
        results = {g.name: g for g in evaluate(bundle, window).gates}
        assert results[gate].status == "fail", (gate, results[gate])
    path = tmp_path / "window.parquet"
    shifted.to_parquet(path)
    cli = run_cli("gates", "check", "churn@v1.0.0", "--window", str(path), "--json", cwd=gated.root)
    assert cli.returncode == 3, cli.stderr
    body = json.loads(cli.stdout)
    assert body["decision"] == "rollback"
    drift_gate = next(g for g in body["gates"] if g["name"] == "score-drift")
    assert set(drift_gate) >= {"name", "kind", "status", "observed", "threshold", "evidence"}
    assert drift_gate["threshold"] == {"max": 0.2} and drift_gate["observed"] > 0.2


def test_a_small_window_is_insufficient_not_a_pass(gated: Registry) -> None:
    window = window_for(gated, churn_frame(150, seed=15))
    report = evaluate(gated.describe("churn@v1.0.0"), window)
    assert {g.status for g in report.gates} == {"insufficient"}
    assert report.decision == "inconclusive"  # the rollout waits: never a pass, never a warning to ignore
    said = report.summary()
    assert said.startswith("inconclusive: latency-p99: insufficient (150 samples in the window, 200 needed)"), said
    assert "accuracy: insufficient (no labels yet: the window has no 'label' column)" in report.summary()


def test_no_traffic_is_inconclusive_and_every_gate_says_so(gated: Registry) -> None:
    empty = window_for(gated, churn_frame(150, seed=15)).head(0)
    report = evaluate(gated.describe("churn@v1.0.0"), empty)
    assert report.n == 0 and report.decision == "inconclusive"
    assert {(g.status, g.evidence["reason"]) for g in report.gates} == {("insufficient", "no traffic")}


BAD_GATES = {
    "unknown-kind": ("gates:\n  - name: lat\n    kind: latncy\n    max_ms: 5\n", 3, "unknown gate kind 'latncy'"),
    "negative-threshold": ("gates:\n  - name: e\n    kind: error_rate\n    max: -0.1\n", 4, "max must be"),
    "metric-typo": (
        "gates:\n  - name: d\n    kind: prediction_drift\n    metric: pis\n    max: 0.2\n",
        4,
        "metric 'pis' is not one of",
    ),
    "key-typo": (
        "min_samples: 10\ngates:\n  - name: l\n    kind: latency\n    max_ms: 5\n    quantil: p99\n",
        6,
        "unknown key 'quantil'",
    ),
    "no-bound": ("gates:\n  - name: s\n    kind: slice\n    by: region\n    metric: psi\n", 2, "needs min or max"),
}


@pytest.mark.parametrize("case", sorted(BAD_GATES))
def test_a_bad_gates_file_is_refused_at_register_time_naming_the_line(
    project: Path, tmp_path: Path, churn: pd.DataFrame, case: str
) -> None:
    text, line, message = BAD_GATES[case]
    gates = tmp_path / "gates.yaml"
    gates.write_text(text)
    model = churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES].head(500), churn[TARGET].head(500))
    with pytest.raises(InvalidInput, match=f"line {line}: .*{message}"):
        Registry(project).register(
            "churn", model, churn[[*BASE_FEATURES, TARGET]].head(500), target=TARGET, gates=gates
        )
    assert Registry(project).versions() == []


def test_drift_cli_against_a_bundle_reference_and_per_slice(gated: Registry, tmp_path: Path) -> None:
    window = window_for(gated, churn_frame(2000, seed=16))
    window.loc[window["region"] == "east", "proba_1"] = 0.99
    path = tmp_path / "window.parquet"
    window.to_parquet(path)
    one = json.loads(run_cli("drift", "churn@v1.0.0", str(path), "--json", cwd=gated.root).stdout)
    assert one["column"] == "proba_1" and {
        "psi",
        "ks",
        "ks_pvalue",
        "js",
        "wasserstein",
        "wasserstein_norm",
        "quantiles",
        "tail_share",
        "nan",
        "n_ref",
        "n_cur",
    } <= set(one)
    sliced = json.loads(run_cli("drift", "churn@v1.0.0", str(path), "--by", "region", "--json", cwd=gated.root).stdout)
    by_region = {r["slice"]["region"]: r["psi"] for r in sliced}
    assert max(by_region, key=lambda k: by_region[k]) == "east"


def test_every_gate_kind_has_one_evaluator() -> None:
    """GATE_KINDS (read from the Gate union) and the evaluators name the same kinds."""
    from rollbackkit.analysis.gates import _EVALUATORS
    from rollbackkit.analysis.gatespec import GATE_KINDS

    assert len(set(GATE_KINDS)) == len(GATE_KINDS)
    assert set(GATE_KINDS) == set(_EVALUATORS)


def test_a_gate_in_words_names_its_bound_in_plain_numbers() -> None:
    from rollbackkit.analysis.gates import GateResult

    latency = GateResult("latency-p99", "latency", "critical", "pass", 6.53, {"max_ms": 2000.0}, {"quantile": "p99"})
    assert latency.words() == "latency-p99 6.53 ms <= 2000 ms"
    tail = GateResult("score-tail", "tail", "critical", "pass", 0.0429, {"p99_max": 0.9}, {})
    assert tail.words() == "score-tail 0.0429 within p99 max 0.9"
    drifted = GateResult("score-drift", "prediction_drift", "critical", "fail", 0.995, {"max": 0.25}, {"metric": "psi"})
    assert drifted.words() == "score-drift psi 0.995 > 0.25"
