"""Candidate against live over the same minutes: a difference fails only when it is material
(beyond the threshold) and supported by the data (its interval lies beyond it too).

So a candidate 1.5x slower than live fails at once; a candidate equal to live passes at a
thousand rows and at a million (no sample-size false alarm); a big difference on a small
sample waits (inconclusive) instead of guessing. Tolerance and malformed comparisons too.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.linear_model import LogisticRegression

from rollbackkit import Registry
from rollbackkit.analysis import comparison
from rollbackkit.analysis.gates import GateReport, GateResult, evaluate, tolerate
from rollbackkit.analysis.gatespec import parse_duration, parse_gates
from rollbackkit.errors import InvalidInput

from .conftest import new_repo

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GATES = {
    "min_samples": 200,
    "gates": [
        {"name": "p99-vs-live", "kind": "latency", "quantile": "p99", "compare": "live", "max_ratio": 1.2},
        {"name": "errors-vs-live", "kind": "error_rate", "compare": "live", "max_increase": 0.005},
        {
            "name": "accuracy-vs-live",
            "kind": "label_metric",
            "metric": "accuracy",
            "compare": "live",
            "max_decrease": 0.02,
        },
        {"name": "f1-vs-live", "kind": "label_metric", "metric": "f1", "compare": "live", "max_decrease": 0.05},
        {
            "name": "accuracy-by-site-vs-live",
            "kind": "slice",
            "by": "site",
            "metric": "accuracy",
            "compare": "live",
            "max_decrease": 0.05,
            "min_slice_samples": 100,
        },
        {"name": "shadow-agrees", "kind": "agreement", "min": 0.95, "by": "site"},
    ],
}
COMPARED = ("p99-vs-live", "errors-vs-live", "accuracy-vs-live", "f1-vs-live", "accuracy-by-site-vs-live")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A breast-cancer classifier (integer classes) with a site input and gates against live."""
    root = new_repo(tmp_path_factory.mktemp("compare") / "project")
    Registry.init(root)
    X, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True)
    X = X[["mean radius", "mean texture"]].assign(site=np.where(np.arange(len(X)) % 10 == 0, "west", "east"))
    model = LogisticRegression().fit(X[["mean radius", "mean texture"]], y)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        make_column_transformer(("passthrough", ["mean radius", "mean texture"])), LogisticRegression()
    )
    model.fit(X, y)
    registry = Registry(root)
    registry.register("cancer", model, X.assign(target=y), target="target", gates=GATES, version="v1.0.0")
    return registry.describe("cancer@v1.0.0")


def traffic(
    n: int, seed: int, *, slow: float = 1.0, errors: float = 0.01, accuracy: float = 0.9, west: float | None = None
) -> pd.DataFrame:
    """A deployment's rows with labels: latency ~ gamma, a share of errors, labels right at ``accuracy``."""
    rng = np.random.default_rng(seed)
    prediction = rng.integers(0, 2, n)
    site = np.where(rng.uniform(size=n) < 0.1, "west", "east")
    right = rng.uniform(size=n) < np.where((site == "west") & (west is not None), west or 0.0, accuracy)
    label = np.where(right, prediction, 1 - prediction)
    u = rng.uniform(size=n)
    return pd.DataFrame(
        {
            "site": site,
            "prediction": prediction,
            "proba_0": 1 - np.where(prediction == 1, 0.5 + u / 2, u / 2),
            "proba_1": np.where(prediction == 1, 0.5 + u / 2, u / 2),
            "label": pd.Series(label, dtype="int64").astype(object),
            "latency_ms": slow * rng.gamma(2.0, 4.0, n),
            "error": np.where(rng.uniform(size=n) < errors, "TimeoutError", None),
            "request_id": [f"r{seed}-{i}" for i in range(n)] if n <= 100_000 else np.arange(n).astype(str),
            "row": 0,
        }
    )


def statuses(report: GateReport) -> dict[str, str]:
    return {g.name: g.status for g in report.gates}


def test_a_candidate_one_and_a_half_times_slower_fails_its_latency_gate(bundle: object) -> None:
    live = traffic(20_000, seed=1)
    report = evaluate(bundle, traffic(20_000, seed=2, slow=1.5), live=live, now=NOW)  # type: ignore[arg-type]
    p99 = next(g for g in report.gates if g.name == "p99-vs-live")
    assert p99.status == "fail" and report.decision == "rollback"
    assert 1.4 < p99.evidence["ratio"] < 1.6 and p99.evidence["ci"][0] > 1.2
    assert (p99.evidence["n"], p99.evidence["n_live"]) == (20_000, 20_000)
    said = p99.words()  # p99-vs-live 40 ms vs live 26.6 ms: ratio 1.5 > 1.2 (ci 1.43 to 1.59)
    assert said.startswith("p99-vs-live ") and " ms vs live " in said and ": ratio 1.5 > 1.2 (ci 1.4" in said, said
    assert "p99-vs-live" in report.summary()
    assert statuses(report)["accuracy-vs-live"] == "pass"  # only latency differs


@pytest.mark.parametrize("rows", [1_000, 1_000_000])
def test_a_candidate_equal_to_live_passes_at_any_size(bundle: object, rows: int) -> None:
    live, candidate = traffic(rows, seed=10), traffic(rows, seed=11)
    candidate = candidate.assign(request_id=live["request_id"])  # a shadow of the same requests
    started = time.perf_counter()
    report = evaluate(bundle, candidate, live=live, now=NOW)  # type: ignore[arg-type]
    spent = time.perf_counter() - started
    got = statuses(report)
    assert {name: got[name] for name in COMPARED} == {name: "pass" for name in COMPARED}, report.summary()
    assert report.gates[0].evidence["n"] == rows
    assert spent < 20, spent  # ~3 s for six gates on 2 x 1,000,000 rows; the bootstrap is bounded


def test_equal_candidates_never_fail_at_a_thousand_rows(bundle: object) -> None:
    """Across draws a thousand rows may leave a material-looking difference unsupported, never failed."""
    seen: list[str] = []
    for seed in range(12):
        report = evaluate(bundle, traffic(1_000, seed=100 + seed), live=traffic(1_000, seed=200 + seed), now=NOW)  # type: ignore[arg-type]
        seen += [statuses(report)[name] for name in COMPARED]
    assert "fail" not in seen
    assert seen.count("pass") >= 0.85 * len(seen)


def test_quantile_intervals_take_linear_time_on_a_million_rows() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.gamma(2.0, 4.0, 1_000_000), rng.gamma(2.0, 4.0, 1_000_000)
    started = time.perf_counter()
    outcome = comparison.quantiles(a, b, 0.99, "max_ratio", 1.2, 0.95)
    assert time.perf_counter() - started < 0.5
    assert outcome.candidate == pytest.approx(np.quantile(a, 0.99))  # numpy's own (linear) quantile
    assert outcome.ci[0] < 1.0 < outcome.ci[1] and outcome.ci[1] - outcome.ci[0] < 0.03
    assert outcome.verdict == "pass"


def test_a_material_difference_on_a_small_sample_is_inconclusive_then_fails_with_more_data(bundle: object) -> None:
    def labelled(n: int, right: int, seed: int) -> pd.DataFrame:
        rows = traffic(n, seed=seed, errors=0.0)
        correct = np.arange(n) < right
        return rows.assign(
            label=pd.Series(np.where(correct, rows["prediction"], 1 - rows["prediction"])).astype(object)
        )

    small = evaluate(bundle, labelled(200, 170, 1), live=labelled(200, 184, 2), now=NOW)  # type: ignore[arg-type]
    gate = next(g for g in small.gates if g.name == "accuracy-vs-live")
    assert gate.status == "inconclusive", gate
    assert gate.evidence["difference"] == pytest.approx(0.07) and gate.evidence["ci"][0] < 0.02
    assert gate.words().startswith("accuracy-vs-live 0.85 vs live 0.92: decrease 0.07 > 0.02 (ci ")
    assert gate.words().endswith(": not yet supported) (200 of 200 rows labelled)"), gate.words()
    assert small.decision in ("inconclusive", "rollback")
    large = evaluate(bundle, labelled(4000, 3400, 1), live=labelled(4000, 3680, 2), now=NOW)  # type: ignore[arg-type]
    gate = next(g for g in large.gates if g.name == "accuracy-vs-live")
    assert gate.status == "fail" and gate.evidence["ci"][0] > 0.02 and large.decision == "rollback"


def test_each_site_is_compared_with_the_same_site_of_live(bundle: object) -> None:
    live = traffic(20_000, seed=5)
    candidate = traffic(20_000, seed=6, west=0.6)  # west collapses from 0.9 to 0.6; the aggregate drops ~0.03
    gate = next(
        g for g in evaluate(bundle, candidate, live=live, now=NOW).gates if g.name == "accuracy-by-site-vs-live"
    )  # type: ignore[arg-type]
    assert gate.status == "fail" and gate.evidence["worst_slice"] == {"site": "west"}
    by_site = {s["slice"]["site"]: s["verdict"] for s in gate.evidence["slices"]}
    assert by_site == {"east": "pass", "west": "fail"}


def test_without_live_the_comparisons_are_skipped_and_nothing_decided_is_no_pass(bundle: object) -> None:
    report = evaluate(bundle, traffic(2_000, seed=1), now=NOW)  # type: ignore[arg-type]
    assert set(statuses(report).values()) == {"skipped"}
    assert report.gates[0].evidence["reason"] == "no live version serves beside it"
    assert report.decision == "inconclusive"  # every gate skipped: no gate decided, so no pass
    assert report.summary() == "inconclusive: no gate decided (6 gates, none passed)"


def test_a_shadow_agreement_is_right_on_a_constructed_case(bundle: object) -> None:
    live = traffic(2_000, seed=1, errors=0.0)
    shadow = live.copy()
    flipped = np.arange(len(shadow)) % 10 == 0  # exactly one answer in ten differs
    shadow.loc[flipped, "prediction"] = 1 - shadow.loc[flipped, "prediction"]
    shadow = shadow.sample(frac=1.0, random_state=0)  # pairs match by request id, not by position
    gate = next(g for g in evaluate(bundle, shadow, live=live, now=NOW).gates if g.name == "shadow-agrees")  # type: ignore[arg-type]
    assert gate.status == "fail" and gate.observed == pytest.approx(0.9)
    assert gate.evidence["n_paired"] == 2_000 and gate.evidence["mean_abs_delta"] == 0.0
    west = next(s for s in gate.evidence["slices"] if s["slice"] == {"site": "west"})
    assert west["agreement"] == pytest.approx(1 - flipped[live["site"] == "west"].mean())


def test_a_failure_counts_after_failure_limit_consecutive_evaluations() -> None:
    failing = GateResult("errors", "error_rate", "rollback", "fail", 0.2, {"max": 0.05}, {"n": 500}, failure_limit=3)
    report = GateReport("cancer@v1.0.0", 500, "rollback", [failing])
    streaks: dict[str, int] = {}
    seen = []
    for _ in range(3):
        tolerated, streaks = tolerate(report, streaks)
        seen.append((tolerated.gates[0].status, tolerated.decision, tolerated.gates[0].evidence.get("failing")))
    assert seen == [
        ("inconclusive", "inconclusive", "1 of 3"),
        ("inconclusive", "inconclusive", "2 of 3"),
        ("fail", "rollback", None),
    ]
    assert tolerate(report, {"errors": 1})[0].gates[0].words() == "errors error rate 0.2 > 0.05 (failing 2 of 3)"
    passing = GateReport("cancer@v1.0.0", 500, "pass", [replace(failing, status="pass", observed=0.01)])
    assert tolerate(passing, streaks)[1] == {}  # a pass resets the streak


def test_initial_delay_waits_and_says_how_long(bundle: object) -> None:
    delayed = replace(
        bundle, gates={"gates": [{"name": "errors", "kind": "error_rate", "max": 0.5, "initial_delay": "2m"}]}
    )  # type: ignore[type-var]
    report = evaluate(delayed, traffic(500, seed=1), serving_for=40)
    assert report.gates[0].words() == "errors: insufficient (waiting: 40s of 2m initial delay)"
    assert report.decision == "inconclusive"
    assert evaluate(delayed, traffic(500, seed=1), serving_for=120).decision == "pass"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=st.floats(0.02, 0.3), delta=st.floats(-0.05, 0.05), n=st.integers(300, 5000))
def test_the_proportion_interval_covers_the_true_difference_at_about_its_rate(p: float, delta: float, n: int) -> None:
    q = min(max(p + delta, 0.005), 0.995)
    rng = np.random.default_rng(int(p * 1e6) + n)
    draws = 300
    ks, ls = rng.binomial(n, q, draws), rng.binomial(n, p, draws)
    covered = [
        (lambda c: c.ci[0] <= q - p <= c.ci[1])(
            comparison.proportions(int(k), n, int(m), n, "max_increase", 0.01, 0.95)
        )
        for k, m in zip(ks, ls, strict=True)
    ]
    assert np.mean(covered) >= 0.9


@settings(max_examples=4, deadline=None)
@given(q=st.sampled_from([0.5, 0.95, 0.99]), scale=st.floats(1.0, 2.0))
def test_the_quantile_ratio_interval_covers_the_true_ratio(q: float, scale: float) -> None:
    rng = np.random.default_rng(int(scale * 1000))
    covered = []
    for _ in range(100):
        a, b = scale * rng.gamma(2.0, 4.0, 3000), rng.gamma(2.0, 4.0, 3000)
        outcome = comparison.quantiles(a, b, q, "max_ratio", 1.2, 0.95)
        covered.append(outcome.ci[0] <= scale <= outcome.ci[1])
    assert np.mean(covered) >= 0.93  # each side at 97.5%: the ratio at 95% or better


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    columns=st.sets(st.sampled_from(["prediction", "proba_1", "label", "latency_ms", "error", "site", "time"])),
    with_live=st.booleans(),
    serving_for=st.none() | st.floats(0, 1e6),
)
def test_an_empty_window_is_never_a_pass(
    bundle: object, columns: set[str], with_live: bool, serving_for: float | None
) -> None:
    every = traffic(10, seed=0).assign(time=pd.Timestamp(NOW))
    empty = every[sorted(columns & set(every.columns))].head(0)
    report = evaluate(bundle, empty, live=every if with_live else None, now=NOW, serving_for=serving_for)  # type: ignore[arg-type]
    assert report.decision == "inconclusive"
    assert {g.evidence["reason"] for g in report.gates} == {"no traffic"}


MALFORMED = {
    "no-threshold": (
        "    kind: latency\n    compare: live\n",
        5,
        "compare: live needs one of max_ratio, max_increase, max_decrease",
    ),
    "threshold-alone": (
        "    kind: latency\n    max_ms: 50\n    max_ratio: 1.2\n",
        6,
        "max_ratio without compare: live",
    ),
    "not-live": (
        "    kind: latency\n    compare: prod\n    max_ratio: 1.2\n",
        5,
        "compare 'prod' is not one of 'live'",
    ),
    "negative-ratio": (
        "    kind: latency\n    compare: live\n    max_ratio: -1\n",
        6,
        "max_ratio must be greater than 0",
    ),
    "two-thresholds": (
        "    kind: latency\n    compare: live\n    max_ratio: 1.2\n    max_increase: 5\n",
        7,
        "takes one of",
    ),
    "drift-compares": (
        "    kind: prediction_drift\n    max: 0.2\n    compare: live\n",
        6,
        "compare on a prediction_drift gate",
    ),
    "wrong-direction": (
        "    kind: label_metric\n    metric: accuracy\n    compare: live\n    max_increase: 0.02\n",
        7,
        "accuracy (higher is better) compares by max_decrease",
    ),
    "bad-duration": (
        "    kind: error_rate\n    max: 0.1\n    initial_delay: 10x\n",
        6,
        "initial_delay: '10x' is not a duration",
    ),
    "zero-failure-limit": (
        "    kind: error_rate\n    max: 0.1\n    failure_limit: 0\n",
        6,
        "failure_limit must be greater than",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_comparison_is_one_line_naming_the_gate_and_its_line(case: str) -> None:
    body, line, message = MALFORMED[case]
    with pytest.raises(InvalidInput) as raised:
        parse_gates("min_samples: 10\ngates:\n  - name: p99-vs-live\n" + body)
    said = raised.value.message
    assert said.startswith(f"gates.yaml line {line}: gate 'p99-vs-live': ") and message in said, said
    assert "\n" not in str(raised.value)


def test_durations_read_as_people_write_them() -> None:
    assert [parse_duration(v, "--bake") for v in (90, "30s", "10m", "2h", "1d", "1.5h")] == [
        90,
        30,
        600,
        7200,
        86400,
        5400,
    ]
    with pytest.raises(InvalidInput, match=r"^--bake: '10x' is not a duration such as 30s, 10m, 2h\."):
        parse_duration("10x", "--bake")


def test_the_window_path_reads_like_the_frame(bundle: object, tmp_path: Path) -> None:
    live, candidate = traffic(2_000, seed=1), traffic(2_000, seed=2, slow=1.5)
    live.to_parquet(tmp_path / "live.parquet")
    candidate.to_parquet(tmp_path / "candidate.parquet")
    report = evaluate(bundle, tmp_path / "candidate.parquet", live=tmp_path / "live.parquet", now=NOW)  # type: ignore[arg-type]
    assert statuses(report)["p99-vs-live"] in ("fail", "inconclusive")
