"""The 3 AM scenario: roll back to a model trained on 47 features while the pipeline sends 52.

v1.0.0 is trained on 47 features, v1.1.0 on 52 (5 added). Before anything serves, the
toolkit must say whether a live frame can be scored, exactly how it is adapted, and why not
when it cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.bundle.compat import apply_adaptation, check
from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, NEW_FEATURES, TARGET, churn_frame, churn_pipeline
from rollbackkit.errors import IncompatibleInput

from .conftest import run_cli


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(3000, seed=1)


@pytest.fixture
def churn_repo(project: Path, churn: pd.DataFrame) -> Path:
    registry = Registry(project)
    v1 = churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], churn[TARGET])
    v2 = churn_pipeline(ALL_FEATURES).fit(churn[ALL_FEATURES], churn[TARGET])
    registry.register("churn", v1, churn[[*BASE_FEATURES, TARGET]], target=TARGET, version="v1.0.0")
    registry.register("churn", v2, churn[[*ALL_FEATURES, TARGET]], target=TARGET, version="v1.1.0")
    return project


@pytest.fixture
def live(churn: pd.DataFrame) -> pd.DataFrame:
    """What the feature pipeline sends today: all 52 columns, fresh rows."""
    return churn_frame(1000, seed=7)[ALL_FEATURES]


def test_52_live_columns_are_adaptable_to_the_47_feature_model(churn_repo: Path, live: pd.DataFrame) -> None:
    registry = Registry(churn_repo)
    report = registry.check("churn@v1.0.0", live)
    assert report.verdict == "adaptable"
    assert report.adaptation.drop == NEW_FEATURES
    assert report.adaptation.casts == {}
    bundle = registry.load("churn@v1.0.0")
    adapted = bundle.predict(live, adaptation=report.adaptation)
    direct = bundle.predict(live[BASE_FEATURES])
    pd.testing.assert_frame_equal(adapted, direct)
    assert adapted["proba_1"].to_numpy().tolist() == direct["proba_1"].to_numpy().tolist()
    with pytest.raises(IncompatibleInput, match="adaptation"):
        bundle.predict(live)  # nothing is dropped implicitly

    cli = run_cli(
        "check", "churn@v1.0.0", "--features", "-", "--json", cwd=churn_repo, input=live.head(50).to_csv(index=False)
    )
    assert cli.returncode == 0, cli.stderr
    body = json.loads(cli.stdout)
    assert body["verdict"] == "adaptable"
    assert body["adaptation"] == {"drop": NEW_FEATURES, "reorder": False, "casts": {}}
    assert {f["column"] for f in body["findings"] if f["kind"] == "extra_column"} == set(NEW_FEATURES)


def test_a_missing_column_is_incompatible_and_named(churn_repo: Path, live: pd.DataFrame, tmp_path: Path) -> None:
    report = Registry(churn_repo).check("churn@v1.0.0", live.drop(columns=["support_calls"]))
    assert report.verdict == "incompatible"
    assert report.columns("incompatible") == ["support_calls"]
    path = tmp_path / "live.parquet"
    live.drop(columns=["support_calls"]).to_parquet(path)
    cli = run_cli("check", "churn@v1.0.0", "--features", str(path), "--json", cwd=churn_repo)
    assert cli.returncode == 1
    assert [f["column"] for f in json.loads(cli.stdout)["findings"] if f["kind"] == "missing_column"] == [
        "support_calls"
    ]


def test_a_float_column_sent_as_strings_is_incompatible(churn_repo: Path, live: pd.DataFrame) -> None:
    broken = live.assign(monthly_charges=live["monthly_charges"].map(lambda v: f"${v:.2f}"))
    report = Registry(churn_repo).check("churn@v1.0.0", broken)
    assert report.verdict == "incompatible"
    assert report.columns("incompatible") == ["monthly_charges"]
    assert "no safe conversion" in next(f.detail for f in report.findings if f.column == "monthly_charges")


def test_safe_widening_and_reordering_are_declared_and_lossless(churn_repo: Path, live: pd.DataFrame) -> None:
    registry = Registry(churn_repo)
    shuffled = live[list(reversed(BASE_FEATURES))].astype({"tenure_months": "int32", "age": "int16"})
    report = registry.check("churn@v1.0.0", shuffled)
    assert report.verdict == "adaptable"
    assert report.adaptation.reorder is True
    assert report.adaptation.casts == {"tenure_months": "int64", "age": "int64"}
    adapted = apply_adaptation(shuffled, report.adaptation, registry.describe("churn@v1.0.0").schema)
    pd.testing.assert_frame_equal(adapted, live[BASE_FEATURES])


def test_narrowing_or_unsafe_dtypes_are_not_adapted(churn_repo: Path, live: pd.DataFrame) -> None:
    schema = Registry(churn_repo).describe("churn@v1.0.0").schema
    as_float = live[BASE_FEATURES].astype({"tenure_months": "float64"})
    assert check(schema, as_float).adaptation.casts == {"tenure_months": "int64"}  # whole numbers: lossless
    as_float["tenure_months"] += 0.5
    assert check(schema, as_float).columns("incompatible") == ["tenure_months"]
    as_float32 = live[BASE_FEATURES].astype({"monthly_charges": "float32"})
    assert check(schema, as_float32).adaptation.casts == {"monthly_charges": "float64"}


def test_categorical_drift_and_out_of_range_values_are_counted(churn_repo: Path, live: pd.DataFrame) -> None:
    drifted = live[BASE_FEATURES].copy()
    drifted.loc[drifted.index[:120], "region"] = "mars"  # 12% unseen: past the 5% threshold
    drifted.loc[drifted.index[:3], "plan"] = "enterprise"  # 0.3%: a warning only
    drifted.loc[drifted.index[:40], "monthly_charges"] = 10_000.0  # 4% far outside the range
    drifted.loc[drifted.index[40:45], "age"] = 95  # just above the trained max
    report = Registry(churn_repo).check("churn@v1.0.0", drifted)
    by_column = {f.column: f for f in report.findings}
    assert report.verdict == "incompatible"
    assert (by_column["region"].kind, by_column["region"].count, by_column["region"].severity) == (
        "unseen_categories",
        120,
        "incompatible",
    )
    assert (by_column["plan"].count, by_column["plan"].severity) == (3, "warning")
    assert (by_column["monthly_charges"].count, by_column["monthly_charges"].severity) == (40, "incompatible")
    assert (by_column["age"].count, by_column["age"].severity) == (5, "warning")
    assert "'mars'" in by_column["region"].detail
    assert report.columns("incompatible") == ["monthly_charges", "region"]


def test_a_frame_identical_to_training_is_compatible(churn_repo: Path, churn: pd.DataFrame) -> None:
    report = Registry(churn_repo).check("churn@v1.1.0", churn[ALL_FEATURES])
    assert (report.verdict, report.findings) == ("compatible", [])


def test_preflight_combines_check_parity_and_the_output_contract(churn_repo: Path, live: pd.DataFrame) -> None:
    registry = Registry(churn_repo)
    ok = registry.preflight("churn@v1.0.0", live, consumer="churn@v1.1.0")
    assert ok.verdict == "adaptable"
    assert ok.parity is not None and ok.parity.ok
    assert ok.contract == []
    bad = registry.preflight("churn@v1.0.0", live.drop(columns=["age"]))
    assert bad.verdict == "incompatible"
    cli = run_cli(
        "preflight",
        "churn@v1.0.0",
        "--features",
        "-",
        "--json",
        cwd=churn_repo,
        input=json.dumps({"records": live.head(20).to_dict(orient="records")}),
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["verdict"] == "adaptable"


def test_an_output_contract_change_blocks_a_switch(churn_repo: Path, churn: pd.DataFrame) -> None:
    labels = churn[TARGET].map({0: "stay", 1: "leave"})
    relabelled = churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], labels)
    registry = Registry(churn_repo)
    registry.register("churn", relabelled, churn[BASE_FEATURES].assign(label=labels), target="label", version="v2.0.0")
    report = registry.preflight("churn@v2.0.0", consumer="churn@v1.0.0")
    kinds = {(f.kind, f.column) for f in report.contract}
    assert ("output_classes", "*") in kinds
    assert ("output_column_removed", "proba_1") in kinds
    assert ("output_column_added", "proba_leave") in kinds
    assert report.verdict == "incompatible"
    assert np.isfinite([f.count for f in report.findings]).all()


def test_a_csv_sample_is_read_with_the_dtypes_the_model_was_trained_on(project: Path) -> None:
    """A CSV has no dtypes: an ``Int64`` column with empty cells comes back as floats, a
    nullable boolean as objects, a datetime as text. ``check`` and ``preflight`` read such a
    sample with the trained dtypes where no value changes, instead of calling it incompatible."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "visits": pd.array(rng.poisson(3, n), dtype="Int64"),
            "promo": pd.array(rng.random(n) < 0.3, dtype="boolean"),
            "spend": rng.normal(50, 10, n),
            "signup": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        }
    )
    frame.loc[rng.random(n) < 0.1, "visits"] = pd.NA
    frame.loc[rng.random(n) < 0.1, "promo"] = pd.NA
    frame["target"] = np.where(frame["spend"] > 50, "high", "low")
    features = ["visits", "promo", "spend", "signup"]
    numeric = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), ["visits", "promo", "spend"])])
    model = make_pipeline(numeric, HistGradientBoostingClassifier(max_iter=10)).fit(frame[features], frame["target"])
    Registry(project).register("spend", model, frame, target="target", version="v1.0.0")
    live = project.parent / "live.csv"
    frame[features].to_csv(live, index=False)
    assert pd.read_csv(live)["visits"].dtype == "float64"  # what the file gives back

    checked = run_cli("check", "spend@v1.0.0", "--features", str(live), "--json", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["verdict"] in {"compatible", "adaptable"}
    report = Registry(project).preflight("spend@v1.0.0", live)
    assert report.verdict != "incompatible", report.to_dict()


def test_categories_never_seen_in_training_are_named_not_turned_into_missing_values(project: Path) -> None:
    """A CSV gives the category column back as text; casting it to the trained categories
    would make every unseen value missing. ``check`` names them instead."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {"region": pd.Categorical(rng.choice(["north", "south", "east"], n)), "spend": rng.normal(50, 10, n)}
    )
    frame["target"] = np.where(frame["spend"] > 50, "high", "low")
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    model.fit(frame[["region", "spend"]], frame["target"])
    Registry(project).register("spend", model, frame, target="target", version="v1.0.0")
    live = project.parent / "west.csv"
    frame.assign(region="west")[["region", "spend"]].to_csv(live, index=False)

    checked = run_cli("check", "spend@v1.0.0", "--features", str(live), "--json", cwd=project)
    report = json.loads(checked.stdout)
    assert (checked.returncode, report["verdict"]) == (1, "incompatible"), report
    unseen = [f for f in report["findings"] if f["kind"] == "unseen_categories"]
    assert unseen and "west" in unseen[0]["detail"], report["findings"]
    assert not [f for f in report["findings"] if f["kind"] in ("nulls", "missing_share")], report["findings"]
