"""A team's real frame has holes: NaN, pandas nullable dtypes, a model that cannot take them.

The frame below is unlike the churn demo: string class labels, ``Int64``, ``boolean``,
``category`` and ``string`` columns, about 10% of every feature missing. One version is a
histogram gradient-boosting classifier (it scores missing values), the other a logistic
regression with no imputer (it does not). ``parity``, ``check`` and ``bundle.predict`` must
tell the truth about both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.bundle.compat import check
from rollbackkit.errors import IncompatibleInput

from .conftest import run_cli

FEATURES = ["size", "visits", "member", "region"]
NUMERIC = ["size", "visits"]


def messy_frame(n: int = 600, seed: int = 0, holes: float = 0.1) -> pd.DataFrame:
    """Nullable dtypes, missing values in every feature, and ``keep``/``leave`` labels."""
    rng = np.random.default_rng(seed)
    size = rng.normal(5, 1, n)
    visits = rng.integers(0, 20, n)
    member = rng.random(n) < 0.4
    frame = pd.DataFrame(
        {
            "size": size,
            "visits": pd.array(visits, dtype="Int64"),
            "member": pd.array(member, dtype="boolean"),
            "region": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "outcome": np.where(size + 0.1 * visits + member > 6.2, "keep", "leave"),
        }
    )
    mask = rng.random((n, len(FEATURES))) < holes
    for i, column in enumerate(FEATURES):
        frame.loc[mask[:, i], column] = None
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return messy_frame()


@pytest.fixture
def messy_repo(project: Path, frame: pd.DataFrame) -> Path:
    """``boosted@v1.0.0`` takes missing values; ``linear@v1.0.0`` (numeric only) does not."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    registry = Registry(project)
    boosted = HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype", random_state=0)
    boosted.fit(frame[FEATURES], frame["outcome"])
    registry.register("boosted", boosted, frame, target="outcome", version="v1.0.0")
    complete = frame.dropna(subset=NUMERIC)
    linear = LogisticRegression().fit(complete[NUMERIC].astype("float64"), complete["outcome"])
    registry.register(
        "linear",
        linear,
        complete[[*NUMERIC, "outcome"]].astype({"visits": "float64"}),
        target="outcome",
        version="v1.0.0",
    )
    return project


def test_parity_of_a_version_without_preprocessing_holds_with_missing_values(messy_repo: Path) -> None:
    registry = Registry(messy_repo)
    golden = registry.load("boosted@v1.0.0").golden
    assert golden.filter(like="input:").isna().any().all()  # every golden feature has holes
    report = registry.parity("boosted@v1.0.0")
    assert report.ok, [c for c in report.features if not c.ok]
    cli = run_cli("parity", "boosted@v1.0.0", "--json", cwd=messy_repo)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    def fill_region(features: pd.DataFrame) -> pd.DataFrame:
        return features.assign(region=features["region"].fillna("north"))

    changed = registry.parity("boosted@v1.0.0", fill_region)
    assert changed.mismatched == ["region"]
    assert "no longer missing" in next(c.detail for c in changed.features if c.column == "region")


def test_a_column_missing_far_more_often_than_in_training_is_a_warning(messy_repo: Path, frame: pd.DataFrame) -> None:
    registry = Registry(messy_repo)
    schema = registry.describe("boosted@v1.0.0").schema
    assert {f.name: f.accepts_null for f in schema.features} == dict.fromkeys(FEATURES, True)
    live = messy_frame(300, seed=5)[FEATURES]
    assert check(schema, live).verdict == "compatible"  # about the training share: nothing to say
    live["visits"] = pd.array([pd.NA] * len(live), dtype="Int64")  # right dtype, 100% missing
    report = registry.check("boosted@v1.0.0", live)
    assert report.verdict == "compatible"  # the model scores missing values: a warning only
    finding = next(f for f in report.findings if f.column == "visits")
    assert (finding.kind, finding.severity, finding.count) == ("missing_share", "warning", 300)
    assert "100.0%" in finding.detail


def test_a_missing_value_the_model_cannot_score_is_incompatible_in_check_and_predict(
    messy_repo: Path, tmp_path: Path
) -> None:
    registry = Registry(messy_repo)
    bundle = registry.load("linear@v1.0.0")
    assert {f.name: f.accepts_null for f in bundle.schema.features} == {"size": False, "visits": False}
    live = messy_frame(200, seed=6)[NUMERIC].astype({"visits": "float64"})  # about 10% missing
    report = check(bundle, live)  # a bundle is accepted where a schema is
    assert report.verdict == "incompatible"
    assert report.columns("incompatible") == NUMERIC
    assert all(f.kind == "nulls" for f in report.findings if f.severity == "incompatible")
    with pytest.raises(IncompatibleInput, match="size: nulls") as refused:
        bundle.predict(live)
    assert "compat.check(bundle, frame)" in refused.value.hint
    path = tmp_path / "live.csv"
    live.to_csv(path, index=False)
    cli = run_cli("check", "linear@v1.0.0", "--features", str(path), "--json", cwd=messy_repo)
    assert cli.returncode == 1
    assert json.loads(cli.stdout)["verdict"] == "incompatible"

    complete = live.dropna()
    assert len(bundle.predict(complete)) == len(complete)


def test_predict_refuses_what_check_refuses_and_its_hint_works_as_written(messy_repo: Path) -> None:
    bundle = Registry(messy_repo).load("boosted@v1.0.0")
    live = messy_frame(100, seed=8)[FEATURES]
    as_text = live.assign(size=live["size"].map(lambda v: f"{v:.2f} cm"))  # the right columns, a wrong dtype
    assert check(bundle, as_text).verdict == "incompatible"
    with pytest.raises(IncompatibleInput, match="size: dtype"):
        bundle.predict(as_text)

    reordered = live[list(reversed(FEATURES))]
    with pytest.raises(IncompatibleInput) as refused:
        bundle.predict(reordered)
    assert "bundle.predict(frame, adaptation=report.adaptation)" in refused.value.hint
    # The hint, followed to the letter:
    frame = reordered
    from rollbackkit.bundle import compat

    report = compat.check(bundle, frame)
    scored = bundle.predict(frame, adaptation=report.adaptation)
    pd.testing.assert_frame_equal(scored, bundle.predict(live))
    assert set(scored["prediction"]) <= {"keep", "leave"}


# --------------------------------------------------------------------------- columns of nulls only
WIDE = ["size", "visits", "member", "region", "note", "seen"]
WIDE_PREPROCESS = """\
import numpy as np
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Every feature as a float, missing values as NaN (the model scores them).\"\"\"

    def floats(column: pd.Series) -> np.ndarray:
        return column.to_numpy(dtype="float64", na_value=np.nan)

    return pd.DataFrame(
        {
            "size": floats(frame["size"]),
            "visits": floats(frame["visits"]),
            "member": floats(frame["member"]),
            "region": floats(frame["region"].cat.codes.where(frame["region"].notna())),
            "note": floats(frame["note"].str.len()),
            "seen": floats((frame["seen"] - pd.Timestamp("2026-01-01")).dt.total_seconds()),
        },
        index=frame.index,
    )
"""


def wide_frame(n: int, seed: int) -> pd.DataFrame:
    """float64, Int64, boolean, category, string and datetime features, none missing in training."""
    rng = np.random.default_rng(seed)
    frame = messy_frame(n, seed, holes=0.0)
    frame["note"] = pd.array(rng.choice(["ok", "late again", "call back"], n), dtype="string")
    frame["seen"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
    return frame[[*WIDE, "outcome"]]


@pytest.fixture
def nulls_repo(messy_repo: Path, tmp_path: Path) -> Path:
    """``wide@v1.0.0`` (scores missing values, trained without any) and ``linear@v1.0.0`` serve prod."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from rollbackkit.ops.traffic import deploy

    code = tmp_path / "wide_features.py"
    code.write_text(WIDE_PREPROCESS)
    namespace: dict = {}
    exec(WIDE_PREPROCESS, namespace)
    train = wide_frame(400, seed=11)
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    model.fit(namespace["preprocess"](train[WIDE]), train["outcome"])
    registry = Registry(messy_repo)
    registry.register("wide", model, train, target="outcome", preprocess=code, version="v1.0.0")
    for name in ("wide", "linear"):
        deploy(messy_repo, f"{name}@v1.0.0", "prod", reason="first release")
    return messy_repo


def one_record(**nulls: None) -> dict:
    """One plain JSON record of ``wide``'s features (ISO datetime), with some set to null."""
    row = wide_frame(1, seed=3)[WIDE].iloc[0]
    record = {
        "size": float(row["size"]),
        "visits": int(row["visits"]),
        "member": bool(row["member"]),
        "region": str(row["region"]),
        "note": str(row["note"]),
        "seen": row["seen"].isoformat(),
    }
    return record | nulls


def test_a_column_of_nulls_is_missing_values_of_its_trained_dtype_in_check(nulls_repo: Path, tmp_path: Path) -> None:
    from rollbackkit.bundle.conform import conform

    registry = Registry(nulls_repo)
    wide, linear = registry.describe("wide@v1.0.0").schema, registry.describe("linear@v1.0.0").schema
    assert not any(f.nullable for f in wide.features)  # no missing value in training
    assert all(f.accepts_null for f in wide.features)
    for name in WIDE:
        frame = pd.DataFrame.from_records([one_record(**{name: None})])
        assert frame[name].dtype == object  # what JSON nulls give
        conformed = conform(frame, wide)
        assert str(conformed[name].dtype) == wide.features[WIDE.index(name)].pandas_dtype, name
        assert conformed[name].isna().all()
        report = check(wide, conformed)  # the other columns may need a declared cast (str -> string)
        assert report.verdict != "incompatible", (name, report.findings)
        assert [f.kind for f in report.findings if f.column == name] == ["missing_share"], (name, report.findings)
        assert registry.check("wide@v1.0.0", frame).verdict != "incompatible", name

    refused = check(linear, conform(pd.DataFrame.from_records([{"size": None, "visits": 3.0}]), linear))
    assert [(f.column, f.kind) for f in refused.findings if f.severity == "incompatible"] == [("size", "nulls")]

    # An empty CSV column (read as floats) is the same column of nulls, through the CLI.
    live = wide_frame(20, seed=4)[WIDE].assign(note=None, seen=None, region=None, member=None)
    path = tmp_path / "live.csv"
    live.to_csv(path, index=False)
    cli = run_cli("check", "wide@v1.0.0", "--features", str(path), "--json", cwd=nulls_repo)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["verdict"] != "incompatible"
    path.write_text("size,visits\n,3\n,4\n")
    cli = run_cli("check", "linear@v1.0.0", "--features", str(path), "--json", cwd=nulls_repo)
    assert cli.returncode == 1
    kinds = {(f["column"], f["kind"]) for f in json.loads(cli.stdout)["findings"] if f["severity"] == "incompatible"}
    assert kinds == {("size", "nulls")}


def test_a_one_record_request_with_a_column_of_nulls_is_scored_or_refused_for_the_null(nulls_repo: Path) -> None:
    from .servers import running_server

    with running_server(nulls_repo, "wide", "prod", args=("--no-log",)) as server:
        for name in WIDE:
            answer = server.predict([one_record(**{name: None})])
            assert answer.status_code == 200, (name, answer.text)
            assert answer.json()["predictions"][0]["prediction"] in {"keep", "leave"}
        answer = server.predict([dict.fromkeys(WIDE)])  # every feature null at once
        assert answer.status_code == 200, answer.text
    with running_server(nulls_repo, "linear", "prod", args=("--no-log",)) as server:
        answer = server.predict([{"size": None, "visits": 3.0}])
        assert answer.status_code == 422, answer.text
        assert "size: nulls" in answer.json()["error"] and "dtype" not in answer.json()["error"]
        assert answer.json()["columns"] == ["size"]
        assert server.predict([{"size": 5.0, "visits": 3.0}]).status_code == 200
