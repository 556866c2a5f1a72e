"""Register says which categorical input its default gates left without a slice gate, and why.

A wine-sized project (178 rows, a 5-level ``region``) gets no ``prediction-drift-by-region``
gate: each level has ~35 reference rows where a segment needs 134. Register used to skip it
silently; now its result, ``--json`` and the CLI say so, naming the column and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rollbackkit.registry.default_gates import default_gates, slice_rows_needed
from rollbackkit.screens.status import _report
from rollbackkit.serving.status import GateStatus

from .cli import run_cli


def _wine(rows_per_region: int) -> pd.DataFrame:
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.iloc[:, [0, 6, 9, -1]]
    wine = wine.sample(n=rows_per_region * 5, replace=len(wine) < rows_per_region * 5, random_state=0)
    regions = np.repeat([f"r{i}" for i in range(5)], rows_per_region)
    out = wine.assign(region=pd.Categorical(regions), target=wine["target"].map({0: "a", 1: "b", 2: "c"}))
    return out.reset_index(drop=True)


def _model(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype", random_state=0)
    return model.fit(frame.drop(columns="target"), frame["target"])


def test_thin_segments_leave_a_note_and_thick_ones_a_gate() -> None:
    from rollbackkit.bundle.schema import infer_features

    for rows, sliced in ((35, False), (300, True)):
        inputs = _wine(rows).drop(columns="target")
        output = SimpleNamespace(kind="classification", primary="prediction", dtypes={})
        schema = SimpleNamespace(features=infer_features(inputs), output=output)
        notes: list[str] = []
        gates = default_gates(schema, inputs, inputs, notes)["gates"]  # type: ignore[arg-type]
        names = [g["name"] for g in gates]
        assert ("prediction-drift-by-region" in names) is sliced
        assert notes == ([] if sliced else [
            f"no slice gate for region: value 'r4' has 35 of the 175 reference rows, too few to judge its drift "
            f"(each value needs {slice_rows_needed()}); declare one in gates.yaml (--gates) to watch it"
        ])  # fmt: skip


def test_register_prints_and_returns_the_note(project: Path) -> None:
    import skops.io

    frame = _wine(35)
    skops.io.dump(_model(frame), project / "m.skops")
    frame.to_parquet(project / "train.parquet")
    args = ["register", "wine", "--model", "m.skops", "--train-data", "train.parquet", "--target", "target"]
    trust = [a for t in skops.io.get_untrusted_types(file=project / "m.skops") for a in ("--trust", t)]
    said = run_cli(*args, *trust, cwd=project)
    assert said.returncode == 0, said.stderr
    printed = " ".join(said.stdout.split())
    assert "note: no slice gate for region: value 'r4' has 35 of the 175 reference rows" in printed
    again = run_cli(*args, *trust, "--json", cwd=project)
    assert json.loads(again.stdout)["notes"][0].startswith("no slice gate for region: ")


@pytest.mark.parametrize(("statuses", "line"), [(["pass"] * 3, "3 gates pass: "), (["pass"], "1 gate passes: ")])
def test_status_counts_the_gates_that_pass_instead_of_all(statuses: list[str], line: str) -> None:
    names = ["error-rate", "latency-p99", "prediction-drift"][: len(statuses)]
    gates = [
        {"name": n, "kind": "error_rate", "severity": "rollback", "status": s, "observed": 0.0, "threshold": {"max": 1}}
        for n, s in zip(names, statuses, strict=True)
    ]
    report = GateStatus.from_dict({"version": "wine@v2.0.0", "decision": "pass", "n": 279, "gates": gates})
    text = _report(report)
    assert line + ", ".join(names) in text and "all gates pass" not in text


def test_drift_panel_notes_say_what_is_true_of_the_windows_and_the_gate() -> None:
    from datetime import UTC, datetime, timedelta

    from rollbackkit.analysis.drift_bins import bin_counts, categorical_binning, numeric_binning
    from rollbackkit.analysis.drift_series import drift_series
    from rollbackkit.widgets.drift_time import notes_html

    rng = np.random.default_rng(3)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    windows = [(start + timedelta(minutes=k), start + timedelta(minutes=k + 1)) for k in range(30)]
    binning = numeric_binning(rng.normal(0, 1, 4000))
    counts = np.array([[bin_counts(rng.normal(0, 1, n), binning)[0] for n in rng.integers(55, 95, 30)]])
    merged = drift_series("x", "psi", binning, bin_counts(rng.normal(0, 1, 4000), binning)[0], counts,
                          np.zeros((1, 30)), windows, ["(all rows)"]).by_rows(24)  # fmt: skip
    low, sizes = int(merged.low_n.sum()), merged.n.sum(axis=0)
    assert 0 < low < len(sizes)  # some merged windows are under 100 rows: the note says how many
    assert merged.notes[-1] == (
        f"{len(sizes)} windows of {sizes.min()}-{sizes.max()} rows (about {sizes.sum() // len(sizes)} each; "
        f"{low} under {merged.min_rows} drawn hollow)"
    )

    region = categorical_binning(["r0", "r1", "r2"] * 50)
    ref = bin_counts(["r0", "r1", "r2"] * 50, region)[0]
    now = bin_counts(["r0", "r9", "r8"] * 40, region)[0]
    for threshold, said in ((None, "as a drift gate would (none watches it)"), (0.2, "as its drift gate counts them")):
        series = drift_series("region", "psi", region, ref, np.array([[now]]), np.zeros((1, 1)), windows[:1],
                              ["(all rows)"], unseen={(0, 0): (80, 1.5)}, threshold=threshold)  # fmt: skip
        assert f"80 rows of categories the reference never saw, each its own, {said}" in notes_html(series)


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"windows": 0}, "windows must be a whole number from 1 to 1,000, not 0."),
        ({"windows": 2.5}, "windows must be a whole number from 1 to 1,000, not 2.5."),
        ({"windows": True}, "windows must be a whole number from 1 to 1,000, not True."),
        ({"bins": -3}, "bins must be a whole number from 1 to 200, not -3."),
    ],
)
def test_drift_over_time_names_a_bad_number_without_server_internals(arguments: dict, said: str) -> None:
    from rollbackkit import drift_over_time
    from rollbackkit.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        drift_over_time(".", "wine", "prod", "region", **arguments)
    assert caught.value.message == said and "/admin" not in str(caught.value)


def test_show_counts_raw_inputs_apart_from_model_features() -> None:
    from rollbackkit.screens.show import _features

    wine = [{"name": n} for n in ("alcohol", "flavanoids", "total_phenols", "magnesium", "organic", "cellar", "a", "b")]
    v1 = {"features": wine, "estimator": {"feature_names_in": ["alcohol", "ratio", "a", "b", "magnesium", "organic"]}}
    assert _features(v1) == "8 raw inputs, 6 model features"  # preprocess derives ratio, leaves cellar out
    same = {"features": wine[:2], "estimator": {"feature_names_in": ["flavanoids", "alcohol"], "n_features_in": 2}}
    assert _features(same) == "2 input features"
    assert _features({"features": wine[:1], "estimator": {"n_features_in": None}}) == "1 input feature"


def test_a_reference_too_small_for_any_slice_says_so_once() -> None:
    """The diabetes regressor's 112 reference rows with three nullable categorical inputs: no value can
    reach the rows a segment needs, so one line names the three columns instead of three notes."""
    from sklearn.datasets import load_diabetes

    from rollbackkit.bundle.schema import infer_features

    X = load_diabetes(as_frame=True).frame.iloc[:112, :4].reset_index(drop=True)
    rng = np.random.default_rng(8)
    inputs = X.assign(
        smoker=pd.array(rng.choice([True, False], len(X)), dtype="boolean"),
        region=pd.array(rng.choice(["north", "south", "east"], len(X)), dtype="string"),
        plan=pd.Categorical(rng.choice(["basic", "plus"], len(X))),
    )
    inputs.loc[::10, ["smoker", "region", "plan"]] = pd.NA
    output = SimpleNamespace(kind="regression", primary="prediction", dtypes={"prediction": "float64"})
    schema = SimpleNamespace(features=infer_features(inputs), output=output)
    notes: list[str] = []
    default_gates(schema, inputs, inputs, notes)  # type: ignore[arg-type]
    assert notes == [
        f"no slice gates for smoker, region, plan: the reference holds 112 rows, too few for any (each value of a "
        f"sliced column needs {slice_rows_needed()}); declare them in gates.yaml (--gates) to watch them"
    ]
