"""A team registers from its wide table with a ``preprocess.py``, as README's Python API says it may.

The table has a ``promo`` column (dtype ``string``) no model was trained on. The callers send
the raw columns the preprocessing reads (recorded in the schema); the model gets
``preprocess()``'s output cut to its own feature names, in its trained order. So the same
request scores the same way with ``promo`` or without it: through ``load().predict`` (a
declared adaptation drops it), the compatibility check (``adaptable``) and a real server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.bundle.compat import check
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.traffic import deploy

from .cli import run_cli
from .servers import running_server
from .story import records

RATIO = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Adds a derived column; passes everything else through (promo included).\"\"\"
    return frame.assign(ratio=frame["alcohol"] / frame["malic_acid"])
"""

NULLABLE = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Nullable columns into floats the model takes, and bmi x bp; the rest passes through.\"\"\"
    return frame.assign(
        visits=frame["visits"].astype("Float64").fillna(-1).astype(float),
        smoker=frame["smoker"].astype("Float64").fillna(0.5).astype(float),
        clinic=frame["clinic"].cat.codes.astype(float),
        bmi_bp=frame["bmi"].fillna(0.0) * frame["bp"],
    )
"""

FORGETS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Forgets the derived column the model was trained on.\"\"\"
    return frame.drop(columns=["alcohol"])
"""


ZSCORE = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"The ratio standardised with the batch's own mean and spread.\"\"\"
    ratio = frame["alcohol"] / frame["malic_acid"]
    return frame.assign(ratio=(ratio - ratio.mean()) / ratio.std())
"""

BACKUP = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Fills alcohol from a backup reading when the caller sends one.\"\"\"
    alcohol = frame["alcohol"]
    if "backup" in frame:
        alcohol = alcohol.fillna(frame["backup"])
    return frame.assign(ratio=alcohol / frame["malic_acid"])
"""


READS_JUNK = """\
def preprocess(frame):
    ratio = frame["alcohol"] / frame["malic_acid"] + 0 * frame["junk0"]
"""


COUNTS_COLUMNS = """\
def preprocess(frame):
    return frame.assign(ratio=frame["alcohol"] / frame["malic_acid"] + len(frame.columns))
"""


def _promo(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.choice(["spring", "summer", None], n), dtype="string")


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    """Wine with string cultivars and a ``promo`` column no model uses."""
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.frame[["alcohol", "malic_acid", "color_intensity", "target"]]
    frame = frame.assign(cultivar=frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"}))
    return frame.drop(columns="target").assign(promo=_promo(len(frame), 0))


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    """Diabetes with NaN, Int64, boolean and category columns, and a ``promo`` one."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame[["age", "bmi", "bp", "target"]].copy()
    rng = np.random.default_rng(1)
    n = len(frame)
    frame.loc[rng.random(n) < 0.1, "bmi"] = np.nan
    frame["visits"] = pd.array(rng.integers(0, 9, n), dtype="Int64")
    frame.loc[rng.random(n) < 0.1, "visits"] = pd.NA
    frame["smoker"] = pd.array(rng.random(n) < 0.3, dtype="boolean")
    frame.loc[rng.random(n) < 0.1, "smoker"] = pd.NA
    frame["clinic"] = pd.Categorical(rng.choice(["north", "south", "east"], n))
    return frame.assign(promo=_promo(n, 2))


def _preprocessed(preprocess: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature logic as the team runs it in its training notebook."""
    namespace: dict = {}
    exec(preprocess, namespace)
    return namespace["preprocess"](frame)  # type: ignore[no-any-return]


def _fitted(preprocess: str, frame: pd.DataFrame, target: str, columns: list[str], estimator: object) -> object:
    features = _preprocessed(preprocess, frame.drop(columns=[target]))
    return estimator.fit(features[columns], frame[target])  # type: ignore[attr-defined]


def test_a_derived_column_and_an_extra_promo_register_and_score_alike(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    code = tmp_path / "features.py"
    code.write_text(RATIO)
    trained_on = ["ratio", "color_intensity", "alcohol", "malic_acid"]  # raw + derived, not the table's order
    model = _fitted(RATIO, wine, "cultivar", trained_on, make_pipeline(StandardScaler(), LogisticRegression()))
    registry = Registry(project)
    registry.register("wine", model, wine, target="cultivar", version="v1.0.0", preprocess=code)

    bundle = registry.load("wine@v1.0.0")
    raw = ["alcohol", "malic_acid", "color_intensity"]
    assert sorted(bundle.schema.feature_names) == sorted(raw)  # what a caller sends: promo is left out
    assert list(bundle.golden.filter(like="feature:").columns) == [f"feature:{c}" for c in trained_on]
    live = wine.drop(columns="cultivar")
    expected = pd.Series(model.predict(_preprocessed(RATIO, live)[trained_on]), name="prediction")  # type: ignore[attr-defined]
    plain = bundle.predict(live[bundle.schema.feature_names])
    pd.testing.assert_series_equal(plain["prediction"].astype(object), expected.astype(object))
    report = check(bundle, live)
    assert report.verdict == "adaptable" and report.adaptation.drop == ["promo"]
    widened = bundle.predict(live, adaptation=report.adaptation)
    pd.testing.assert_frame_equal(widened, plain)
    assert registry.parity("wine@v1.0.0").ok

    deploy(project, "wine@v1.0.0", "prod", reason="first release")
    with running_server(project, "wine", "prod") as server:
        response = server.predict(records(live.head(40)))
    assert response.status_code == 200, response.text
    served = [row["prediction"] for row in response.json()["predictions"]]
    assert served == list(plain["prediction"].head(40))


def test_a_regressor_on_nullable_columns_scores_the_same_with_or_without_promo(
    project: Path, diabetes: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    code = tmp_path / "features.py"
    code.write_text(NULLABLE)
    trained_on = ["age", "bmi_bp", "visits", "smoker", "clinic"]  # not bmi, not bp: the preprocess reads them
    model = _fitted(NULLABLE, diabetes, "target", trained_on, HistGradientBoostingRegressor(max_iter=30))
    registry = Registry(project)
    registry.register("sugar", model, diabetes, target="target", version="v1.0.0", preprocess=code)

    bundle = registry.load("sugar@v1.0.0")
    assert bundle.schema.feature_names == ["age", "bmi", "bp", "visits", "smoker", "clinic"]
    assert {f.name: f.pandas_dtype for f in bundle.schema.features}["visits"] == "Int64"
    live = diabetes.drop(columns="target")
    plain = bundle.predict(live[bundle.schema.feature_names])
    report = check(bundle, live)
    assert report.verdict == "adaptable" and report.adaptation.drop == ["promo"]
    pd.testing.assert_frame_equal(bundle.predict(live, adaptation=report.adaptation), plain)
    assert plain["prediction"].notna().all()


def test_a_preprocess_that_leaves_out_a_model_feature_is_one_line_naming_it(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    code = tmp_path / "features.py"
    code.write_text(FORGETS)
    model = LogisticRegression(max_iter=1000).fit(wine[["alcohol", "malic_acid"]], wine["cultivar"])
    registry = Registry(project)
    with pytest.raises(InvalidInput, match="alcohol") as refused:
        registry.register("wine", model, wine, target="cultivar", version="v1.0.0", preprocess=code)
    assert "\n" not in str(refused.value)
    assert "promo" not in str(refused.value)
    assert registry.versions("wine") == []


def _junk(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``frame`` with ``n`` float columns no model uses."""
    rng = np.random.default_rng(3)
    return frame.assign(**{f"junk{i}": rng.normal(size=len(frame)) for i in range(n)})


def _ratio_model(code: str, frame: pd.DataFrame) -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return _fitted(code, frame, "cultivar", ["ratio", "color_intensity"], estimator)


def test_a_preprocess_with_batch_statistics_leaves_the_junk_columns_out_and_says_how(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    code = tmp_path / "features.py"
    code.write_text(ZSCORE)
    table = _junk(wine, 3)
    registry = Registry(project)
    info = registry.register(
        "wine", _ratio_model(ZSCORE, table), table, target="cultivar", version="v1.0.0", preprocess=code
    )

    raw = ["alcohol", "malic_acid", "color_intensity"]
    assert info.raw_inputs is not None and info.raw_inputs.rule == "probed"
    assert list(info.raw_inputs.dropped) == ["promo", "junk0", "junk1", "junk2"]
    assert registry.load("wine@v1.0.0").schema.feature_names == raw
    assert registry.show("wine@v1.0.0")["raw_inputs"]["kept"] == raw
    shown = run_cli("show", "wine@v1.0.0", cwd=project)
    assert "raw inputs: alcohol, malic_acid, color_intensity (probed; left out: promo, junk0" in shown.stdout


def test_inputs_declared_in_preprocess_keep_a_column_read_only_when_present(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    table = wine.assign(backup=wine["alcohol"])
    model = _ratio_model(BACKUP, table)
    registry = Registry(project)
    guessed, declared = tmp_path / "guessed.py", tmp_path / "declared.py"
    guessed.write_text(BACKUP)
    registry.register("wine", model, table, target="cultivar", version="v1.0.0", preprocess=guessed)
    probed = registry.show("wine@v1.0.0")["raw_inputs"]
    assert probed["rule"] == "probed" and "backup" in probed["dropped"]  # training never needs it: see README

    inputs = ["alcohol", "malic_acid", "color_intensity", "backup"]
    declared.write_text(f"INPUTS = {inputs!r}\n{BACKUP}")
    info = registry.register("wine", model, table, target="cultivar", version="v1.0.1", preprocess=declared)
    assert info.raw_inputs is not None and info.raw_inputs.rule == "declared"
    bundle = registry.load("wine@v1.0.1")
    assert bundle.schema.feature_names == inputs
    gaps = table[inputs].head(6).assign(alcohol=np.nan)
    assert bundle.predict(gaps)["prediction"].notna().all()  # the fill from backup runs at predict

    for bad, says in ((["alcohol", "alcohol"], "twice"), (["alcohol", "vintage"], "vintage"), ("alcohol", "list")):
        declared.write_text(f"INPUTS = {bad!r}\n{BACKUP}")
        with pytest.raises(InvalidInput, match=says) as refused:
            registry.register("wine", model, table, target="cultivar", version="v1.0.2", preprocess=declared)
        assert "\n" not in str(refused.value)
    assert [v.version for v in registry.versions("wine")] == ["v1.0.0", "v1.0.1"]


def test_ctrl_c_in_a_preprocess_stops_register_and_an_undecided_probe_is_said(
    project: Path, wine: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(project)
    model = _ratio_model(RATIO, wine)
    code = tmp_path / "features.py"
    code.write_text(
        f"CALLS = []\n{READS_JUNK}    CALLS.append(1)\n    if len(CALLS) == 3:  # while register probes\n"
        "        raise KeyboardInterrupt\n    return frame.assign(ratio=ratio)\n"
    )
    with pytest.raises(KeyboardInterrupt):
        registry.register("wine", model, _junk(wine, 3), target="cultivar", version="v1.0.0", preprocess=code)
    assert registry.versions("wine") == []

    wide = _junk(wine, 65)  # with promo, alcohol and malic_acid: 68 columns the model does not name
    code.write_text(f"{READS_JUNK}    return frame.assign(ratio=ratio)\n")
    info = registry.register("wine", model, wide, target="cultivar", version="v1.0.0", preprocess=code)
    assert info.raw_inputs is not None and info.raw_inputs.rule == "probed"  # tried in halves
    assert info.raw_inputs.kept == ("alcohol", "malic_acid", "color_intensity", "junk0")

    code.write_text(COUNTS_COLUMNS)  # every column changes the ratio: 40 runs cannot decide
    monkeypatch.setattr("rollbackkit.registry.raw_inputs.MAX_PROBE_RUNS", 40)
    counting = _ratio_model(COUNTS_COLUMNS, wide)
    info = registry.register("wine", counting, wide, target="cultivar", version="v1.0.1", preprocess=code)
    assert info.raw_inputs is not None and info.raw_inputs.rule == "all"
    reason = info.raw_inputs.reason
    assert reason.startswith("68 columns the model does not name, and 40 runs of preprocess() in preprocess.py")
    assert "declare INPUTS" in reason and str(tmp_path) not in reason  # no path of this machine in bundle.yaml
    assert "raw inputs: alcohol" in run_cli("show", "wine@v1.0.1", cwd=project).stdout


TOTAL = """\
INPUTS = ["alcohol", "malic_acid", "color_intensity"]


def preprocess(frame):
    numbers = frame.select_dtypes("number")  # every numeric column the caller sends, junk included
    return frame.assign(ratio=frame["alcohol"] / frame["malic_acid"], total=numbers.sum(axis=1))
"""


def test_inputs_that_leave_out_a_column_preprocess_reads_are_refused_naming_the_features(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    table = _junk(wine, 2)
    model = _fitted(TOTAL, table, "cultivar", ["ratio", "total"], LogisticRegression(max_iter=2000))
    code = tmp_path / "features.py"
    code.write_text(TOTAL)
    registry = Registry(project)
    with pytest.raises(InvalidInput, match=r"INPUTS in preprocess.py leaves out columns .*feature\(s\) total") as no:
        registry.register("wine", model, table, target="cultivar", version="v1.0.0", preprocess=code)
    assert "left out: promo, junk0, junk1" in str(no.value) and "in INPUTS" in no.value.hint
    code.write_text(TOTAL.split("\n", 1)[1])  # the same columns through features=
    with pytest.raises(InvalidInput, match="--features leaves out"):
        registry.register(
            "wine",
            model,
            table,
            target="cultivar",
            version="v1.0.0",
            preprocess=code,
            features=["alcohol", "malic_acid", "color_intensity"],
        )
    assert registry.versions("wine") == []
    code.write_text(TOTAL.replace('"color_intensity"]', '"color_intensity", "junk0", "junk1"]'))
    info = registry.register("wine", model, table, target="cultivar", version="v1.0.0", preprocess=code)
    assert info.raw_inputs is not None and info.raw_inputs.rule == "declared"


def test_columns_read_only_past_the_probed_rows_are_kept_and_named(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    table = _junk(pd.concat([wine] * 3, ignore_index=True), 5)
    table = table.assign(backup=table["alcohol"] + 0.01)
    table.loc[400:, "alcohol"] = np.nan  # gaps only late in the table (the probe tries the first 256 rows)
    code = tmp_path / "features.py"
    code.write_text(BACKUP)
    info = Registry(project).register(
        "wine", _ratio_model(BACKUP, table), table, target="cultivar", version="v1.0.0", preprocess=code
    )
    raw = info.raw_inputs
    assert raw is not None and raw.rule == "probed", raw
    assert raw.kept == ("alcohol", "malic_acid", "color_intensity", "backup")
    assert raw.reason.startswith("backup kept: without it the features differ past the first 256 rows")


def test_a_wide_table_whose_preprocess_reads_spread_out_columns_keeps_just_those(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    read = [f"junk{i}" for i in range(0, 80, 10)]
    code_text = (
        f"def preprocess(frame):\n    ratio = frame['alcohol'] / frame['malic_acid']\n"
        f"    return frame.assign(ratio=ratio + 0 * frame[{read!r}].sum(axis=1))\n"
    )
    code = tmp_path / "features.py"
    code.write_text(code_text)
    wide = _junk(wine, 80)  # with promo, alcohol and malic_acid: 83 columns the model does not name
    info = Registry(project).register(
        "wine", _ratio_model(code_text, wide), wide, target="cultivar", version="v1.0.0", preprocess=code
    )
    assert info.raw_inputs is not None and info.raw_inputs.rule == "probed", info.raw_inputs
    assert info.raw_inputs.kept == ("alcohol", "malic_acid", "color_intensity", *read)


def test_a_model_without_preprocess_or_names_is_told_no_inputs_hint(
    project: Path, wine: pd.DataFrame, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    columns = ["alcohol", "malic_acid", "color_intensity"]
    sio.dump(LogisticRegression(max_iter=2000).fit(wine[columns].to_numpy(), wine["cultivar"]), tmp_path / "m.skops")
    wine[[*columns, "cultivar"]].to_parquet(tmp_path / "train.parquet")
    args = ("--model", str(tmp_path / "m.skops"), "--train-data", str(tmp_path / "train.parquet"))
    done = run_cli("register", "plain", *args, "--target", "cultivar", "--version", "v1.0.0", cwd=project)
    assert done.returncode == 0, done.stderr
    line = "raw inputs: alcohol, malic_acid, color_intensity (all; the model recorded no feature names)\n"
    assert line in done.stdout and line in run_cli("show", "plain@v1.0.0", cwd=project).stdout


def test_a_missing_target_names_the_first_ten_columns_and_says_there_are_more() -> None:
    from rollbackkit.registry.raw_inputs import inputs_of

    wide = pd.DataFrame({f"c{i}": [1.0] for i in range(12)})
    with pytest.raises(InvalidInput) as refused:
        inputs_of(wide, "label", None)
    assert refused.value.hint == f"Choose one of: {', '.join(f'c{i}' for i in range(10))}, ...."
    with pytest.raises(InvalidInput) as narrow:
        inputs_of(wide.iloc[:, :3], "label", None)
    assert narrow.value.hint == "Choose one of: c0, c1, c2."
