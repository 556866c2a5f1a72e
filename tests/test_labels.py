"""Ground truth that arrives later: labels beside the logged rows, joined when a window is read.

The log itself first (request ids, keys, last wins, unknown ids, shadow rows, an old file),
then real projects whose classes are text, booleans and integers, and a regressor: labels
keep the version's types in the window, and a label that does not fit stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit import LabelIngest, Registry, ingest_labels
from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.analysis.labels import coerce_labels, coerce_labels_of
from rollbackkit.bundle.schema import OutputContract
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.labels import decode_labels, json_texts
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.schema import ROW_COLUMNS, quote

from .conftest import new_repo


def _record(log: PredictionLog, request_id: str, rows: int, *, key: str | None, deployment: str = "t-live",
            version: str = "v1.0.0", answer: str = "yes", at: datetime | None = None) -> None:  # fmt: skip
    meta = {
        "request_id": request_id, "time": at or datetime.now(UTC), "env": "prod", "name": "model", "version": version,
        "bundle_id": "b", "slot": "blue", "deployment": deployment, "latency_ms": 1.5, "error": None,
        "primary": "prediction", "key": key,
    }  # fmt: skip
    inputs = pd.DataFrame({"tenure": np.arange(rows, dtype="float64"), "plan": pd.array(["pro"] * rows, "string")})
    log.record(meta, inputs, pd.DataFrame({"prediction": [answer] * rows}))


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    opened = PredictionLog(tmp_path / "predictions.duckdb")
    yield opened
    opened.close()


def _labels(**columns: list) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def test_labels_by_request_id_and_by_key_join_the_window(log: PredictionLog) -> None:
    _record(log, "r-1", 3, key="customer-7")
    _record(log, "r-2", 2, key="customer-8")
    _record(log, "r-3", 1, key=None)

    by_id = log.add_labels(
        "model", "prod", _labels(request_id=["r-1", "r-1"], row=[0, 2], label=["no", "yes"]), "request_id"
    )
    by_key = log.add_labels("model", "prod", _labels(key=["customer-8"], label=["no"]), "key")

    assert (by_id["stored"], by_id["unknown"], by_id["replaced"]) == (2, 0, 0)
    assert (by_key["received"], by_key["stored"], by_key["rows_labelled"]) == (1, 2, 4)  # one key labels its 2 rows
    window = log.window("model", "prod")
    assert list(window[["request_id", "row"]].itertuples(index=False, name=None)) == [
        ("r-1", 0), ("r-1", 1), ("r-1", 2), ("r-2", 0), ("r-2", 1), ("r-3", 0),
    ]  # fmt: skip
    assert window["label"].tolist() == ["no", None, "yes", "no", "no", None]
    assert window["key"].tolist() == ["customer-7"] * 3 + ["customer-8"] * 2 + [None]
    assert {"tenure", "plan", "prediction", "latency_ms", "error", "time"} <= set(window.columns)
    assert log.query("SELECT count(*) AS n FROM predictions")["n"][0] == 6  # the rows were never edited


def test_a_window_since_a_time_keeps_the_rows_logged_at_or_after_it(log: PredictionLog) -> None:
    _record(log, "early", 2, key="k")
    log.flush()
    since = datetime.now(UTC).isoformat()
    _record(log, "late", 1, key="k")
    assert log.window("model", "prod", since=since)["request_id"].tolist() == ["late"]
    assert len(log.window("model", "prod")) == 3


def test_a_window_until_a_time_keeps_the_newest_rows_at_or_before_it_on_busy_traffic(log: PredictionLog) -> None:
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for i in range(300):  # 30,000 rows over two hours: a request of 100 rows every 24 s
        _record(log, f"r-{i:03d}", 100, key=None, at=start + timedelta(seconds=24 * i))
    until = start + timedelta(minutes=90)  # 226 requests (22,600 rows) at or before it: more than the cap
    window = log.window("model", "prod", until=until.isoformat())

    assert len(window) == WINDOW_ROWS and window["time"].max() == until  # the newest rows up to the time
    assert window["time"].min() == start + timedelta(seconds=24 * 26)  # the oldest 26 requests are cut
    assert window["request_id"].iloc[-1] == "r-225"
    assert log.window("model", "prod")["request_id"].iloc[-1] == "r-299"  # without it: the newest rows
    both = log.window("model", "prod", since=(start + timedelta(hours=1)).isoformat(), until=until.isoformat())
    assert both["request_id"].iloc[[0, -1]].tolist() == ["r-150", "r-225"]


def test_the_last_label_wins_and_the_older_is_kept_as_history(log: PredictionLog) -> None:
    _record(log, "r-1", 2, key="k")
    first = log.add_labels("model", "prod", _labels(request_id=["r-1", "r-1", "r-1"], row=[0, 0, 1],
                                                    label=["yes", "no", "yes"]), "request_id")  # fmt: skip
    assert (first["stored"], first["duplicates"], first["replaced"]) == (2, 1, 0)  # the file's last line wins
    assert log.window("model", "prod")["label"].tolist() == ["no", "yes"]

    again = log.add_labels("model", "prod", _labels(request_id=["r-1"], label=["yes"]), "request_id")
    assert (again["stored"], again["replaced"], again["rows_labelled"]) == (1, 1, 2)
    assert log.window("model", "prod")["label"].tolist() == ["yes", "yes"]  # the newest call wins
    history = log.query('SELECT label FROM labels WHERE "row" = 0 ORDER BY seq')["label"].tolist()
    assert history == ['"no"', '"yes"']


def test_unknown_ids_are_counted_and_named_never_stored(log: PredictionLog) -> None:
    _record(log, "r-1", 1, key="k-1")
    ids = ["r-1"] + [f"ghost-{i}" for i in range(12)]
    done = log.add_labels("model", "prod", _labels(request_id=ids, label=["no"] * 13), "request_id")
    assert (done["received"], done["stored"], done["unknown"]) == (13, 1, 12)
    assert done["unknown_sample"] == [f"ghost-{i}:0" for i in range(10)]
    wrong_row = log.add_labels("model", "prod", _labels(request_id=["r-1"], row=[5], label=["no"]), "request_id")
    assert (wrong_row["stored"], wrong_row["unknown_sample"]) == (0, ["r-1:5"])
    other_env = log.add_labels("model", "staging", _labels(key=["k-1"], label=["no"]), "key")
    assert (other_env["stored"], other_env["unknown_sample"]) == (0, ["k-1"])
    assert log.query("SELECT count(*) AS n FROM labels")["n"][0] == 1


def test_missing_labels_are_skipped_and_counted_and_bad_input_stores_nothing(log: PredictionLog) -> None:
    _record(log, "r-1", 3, key="k")
    done = log.add_labels("model", "prod", _labels(request_id=["r-1"] * 3, row=[0, 1, 2],
                                                   label=["yes", None, np.nan]), "request_id")  # fmt: skip
    assert (done["stored"], done["missing"]) == (1, 2)
    with pytest.raises(InvalidInput, match="no 'label' column"):
        log.add_labels("model", "prod", _labels(request_id=["r-1"], truth=["no"]), "request_id")
    with pytest.raises(InvalidInput, match="request_id or key, not 'customer'"):
        log.add_labels("model", "prod", _labels(customer=["r-1"], label=["no"]), "customer")
    with pytest.raises(InvalidInput, match="not a finite number"):
        log.add_labels("model", "prod", _labels(request_id=["r-1", "r-1"], row=[1, 2], label=[1.0, np.inf]),
                       "request_id")  # fmt: skip
    with pytest.raises(InvalidInput, match="row -1"):
        log.add_labels("model", "prod", _labels(request_id=["r-1"], row=[-1], label=["no"]), "request_id")
    assert log.query("SELECT count(*) AS n FROM labels")["n"][0] == 1


def test_a_key_matching_more_than_a_thousand_rows_is_refused_unless_every_row_is_meant(log: PredictionLog) -> None:
    _record(log, "r-big", 1001, key="customer-1")  # a customer id: many predictions, not one
    _record(log, "r-small", 2, key="order-2")
    labels = _labels(key=["order-2", "customer-1"], label=["no", "yes"])
    with pytest.raises(InvalidInput, match=r"Key 'customer-1' matches 1,001 logged rows \(more than 1,000\)") as caught:
        log.add_labels("model", "prod", labels, "key")
    assert "customer id is not a prediction id" in caught.value.message and "--all-rows-of-key" in caught.value.hint
    assert log.query("SELECT count(*) AS n FROM labels")["n"][0] == 0  # the order's label was not stored either

    small = log.add_labels("model", "prod", _labels(key=["order-2"], label=["no"]), "key")
    assert (small["stored"], small["max_rows_per_key"]) == (2, 2)
    every = log.add_labels("model", "prod", labels, "key", all_rows=True)
    assert (every["stored"], every["max_rows_per_key"], every["rows_labelled"]) == (1003, 1001, 1003)
    by_id = log.add_labels("model", "prod", _labels(request_id=["r-big"], label=["no"]), "request_id")
    assert by_id["max_rows_per_key"] == 0


def test_a_label_for_a_quarantined_and_backfilled_row_joins_the_original_row(log: PredictionLog) -> None:
    _record(log, "r-bad", 2, key="k", version="v1.1.0", deployment="t-canary")
    log.quarantine("model", "prod", "v1.1.0")

    def rescore(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
        return pd.DataFrame({"prediction": ["no"] * len(inputs)}), "v1.0.0", "b0"

    assert log.backfill("model", "prod", "v1.1.0", rescore)["rescored"] == 2
    done = log.add_labels("model", "prod", _labels(request_id=["r-bad", "r-bad"], row=[0, 1], label=["no", "yes"]),
                          "request_id")  # fmt: skip
    assert (done["stored"], done["unknown"]) == (2, 0)
    assert log.window("model", "prod", version="v1.1.0")["label"].tolist() == ["no", "yes"]


def test_shadow_rows_never_reach_production_and_share_their_live_rows_labels(log: PredictionLog) -> None:
    log.set_stage("t-live", "model", "prod", "v1.0.0", "production")
    log.set_stage("t-shadow", "model", "prod", "v1.1.0", "shadow")
    _record(log, "r-1", 2, key="k-1")
    _record(log, "r-1", 2, key="k-1", deployment="t-shadow", version="v1.1.0", answer="no")  # the mirror

    tables = {t: log.query(f"SELECT count(*) AS n FROM {t}")["n"][0] for t in
              ("predictions", "predictions_staging", "predictions_shadow", "predictions_production")}  # fmt: skip
    assert tables == {"predictions": 2, "predictions_staging": 0, "predictions_shadow": 2, "predictions_production": 2}
    assert set(log.production()["deployment"]) == {"t-live"}
    assert log.promote("t-shadow") == 0 and log.stage_of("t-shadow") == "shadow"
    assert log.quarantine("model", "prod", "v1.1.0") == 0  # nothing of a shadow is ever quarantined
    assert log.verify_batches() == []

    log.add_labels("model", "prod", _labels(request_id=["r-1"], label=["yes"]), "request_id")
    shadow = log.window("model", "prod", deployment="t-shadow")
    live = log.window("model", "prod", deployment="t-live")
    assert shadow["prediction"].tolist() == ["no", "no"] and live["prediction"].tolist() == ["yes", "yes"]
    assert shadow["label"].tolist() == live["label"].tolist() == ["yes", None]
    assert shadow["tenure"].tolist() == [0.0, 1.0]  # inputs stored once, read by both
    (inputs,) = log.query("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'inputs_%'")["table_name"]
    assert log.query(f"SELECT count(*) AS n FROM {inputs}")["n"][0] == 2


def test_an_old_log_file_is_migrated_on_open_and_accepts_rows_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "predictions.duckdb"
    previous = {k: v for k, v in ROW_COLUMNS.items() if k != "key"}  # the previous release's columns
    columns = ", ".join(f"{quote(k)} {v}" for k, v in previous.items())
    with duckdb.connect(str(path)) as con:
        for table in ("predictions", "predictions_staging"):
            con.execute(f"CREATE TABLE {table} ({columns})")
        con.execute(
            "CREATE VIEW predictions_production AS SELECT * FROM predictions WHERE status IN ('ok', 'backfill')"
        )
        con.execute(
            f"INSERT INTO predictions ({', '.join(quote(k) for k in previous)}) VALUES ('old', 0, now(), 'prod', "
            "'model', 'v0.9.0', 'b', 'blue', 't-old', 'h', 'inputs_gone', '{\"prediction\": \"no\"}', NULL, 1.0, NULL, "
            "'ok', NULL, 'b0')"
        )
    log = PredictionLog(path)
    try:
        _record(log, "new", 1, key="k-new")
        production = log.production().sort_values("request_id")
        assert production["request_id"].tolist() == ["new", "old"]
        assert production["key"].tolist()[0] == "k-new" and pd.isna(production["key"].tolist()[1])
        done = log.add_labels("model", "prod", _labels(request_id=["old", "new"], label=["yes", "no"]), "request_id")
        assert (done["stored"], done["unknown"]) == (2, 0)
    finally:
        log.close()


_SCALARS = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_SCALARS, min_size=1, max_size=30))
def test_a_stored_label_comes_back_with_its_value_and_its_type(values: list) -> None:
    back = decode_labels(pd.Series(json_texts(pd.Series(values, dtype=object)), dtype=object))
    assert [(type(v), v) for v in back] == [(type(v), v) for v in values]  # 1, 1.0 and True stay apart


# ----------------------------------------------------------------------------- coercion
_INT = OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "int64"},
                      classes=["0", "1"], primary="prediction")  # fmt: skip
_BOOL = OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "bool"},
                       classes=["False", "True"], primary="prediction")  # fmt: skip
_TEXT = OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "object"},
                       classes=["no", "yes"], primary="prediction")  # fmt: skip
_REGRESSOR = OutputContract(kind="regression", columns=["prediction"], dtypes={"prediction": "float64"},
                            primary="prediction")  # fmt: skip


@pytest.mark.parametrize(
    ("output", "given", "wanted"),
    [
        (_INT, ["1", "0", 1, 0.0, None], [1, 0, 1, 0, None]),
        (_BOOL, ["true", "True", "0", False, 1, np.nan], [True, True, False, False, True, None]),
        (_TEXT, ["yes", "no", pd.NA], ["yes", "no", None]),
        (_REGRESSOR, ["151.5", 75, np.float32(2.5), None], [151.5, 75.0, 2.5, None]),
    ],
)
def test_labels_are_read_as_the_versions_type(output: OutputContract, given: list, wanted: list) -> None:
    got = coerce_labels(pd.Series(given, dtype=object), output, "labels.csv line").tolist()
    assert got == wanted
    assert [type(v) for v in got] == [type(v) for v in wanted]


@pytest.mark.parametrize(
    ("output", "given", "message"),
    [
        (
            _INT,
            ["1", "one"],
            r"labels.csv line 1: label 'one' is not one of the classes of model@v2 \(integers: 0, 1\)",
        ),
        (_INT, ["2"], "label '2' is not one of the classes"),
        (_BOOL, ["maybe"], r"\(booleans: False, True\)"),
        (_TEXT, ["Yes"], r"label 'Yes' is not one of the classes of model@v2 \(text: 'no', 'yes'\)"),
        (_REGRESSOR, ["12", "tall"], r"line 1: label 'tall' is not a finite number \(model@v2 is a regressor\)"),
        (_REGRESSOR, [True], "label True is not a finite number"),
        (_REGRESSOR, ["inf"], "label 'inf' is not a finite number"),
    ],
)
def test_a_label_that_does_not_fit_is_named_with_what_the_version_expects(
    output: OutputContract, given: list, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        coerce_labels(pd.Series(given, dtype=object), output, "labels.csv line", owner="model@v2")
    assert "\n" not in caught.value.message


def test_a_label_fits_when_it_fits_the_live_version_or_the_canary_beside_it() -> None:
    wider = OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "object"},
                           classes=["maybe", "no", "yes"], primary="prediction")  # fmt: skip
    serving = [("model@v1", _TEXT), ("model@v2", wider)]
    got = coerce_labels_of(pd.Series(["maybe", "yes", None], dtype=object), serving, "labels item")
    assert got.tolist() == ["maybe", "yes", None]  # "maybe" is a class of the canary only
    message = r"labels item 1: label 'never' is not one of the classes of model@v1 \(text: 'no', 'yes'\) nor one of"
    with pytest.raises(InvalidInput, match=message + r" the classes of model@v2 \(text: 'maybe'") as caught:
        coerce_labels_of(pd.Series(["yes", "never"], dtype=object), serving, "labels item")
    assert "a version serving" in caught.value.hint


def test_a_canary_only_class_is_a_label_through_the_log_and_through_the_server(
    tmp_path: Path, isolated_home: Path
) -> None:
    from sklearn import datasets
    from sklearn.tree import DecisionTreeClassifier

    from rollbackkit.serving.bodies import LabelsBody
    from rollbackkit.serving.labels import serve_labels

    loaded = datasets.load_iris(as_frame=True)
    frame = loaded.frame[loaded.feature_names].assign(target=np.asarray(loaded.target_names)[loaded.target])
    two = frame[frame["target"] != "virginica"]  # live knows two species, the canary all three
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    for version, data in (("v1.0.0", two), ("v1.1.0", frame)):
        model = DecisionTreeClassifier(random_state=0).fit(data[loaded.feature_names], data["target"])
        registry.register("iris", model, data, target="target", version=version)
        if version == "v1.0.0":
            deploy(repo, "iris@v1.0.0", "prod", reason="first")
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, "iris", "prod", log=log)
        environment.start()
        environment.deploy("v1.1.0", canary=50, reason="three species", force=True)  # a new class
        until = ""
        for i in range(4):
            environment.predict(frame[loaded.feature_names].iloc[i * 10 : (i + 1) * 10], request_id=f"req-{i}")
            until = datetime.now(UTC).isoformat() if i == 1 else until
        state = environment.router.state
        slots = [s for s in (state.slot(state.live), state.slot(state.canary)) if s is not None]
        early = {r for s in slots for r in environment.window(s, until=until).get("request_id", [])}
        assert early == {"req-0", "req-1"}  # the server's window passes ``until`` to the log
        with pytest.raises(InvalidInput, match="until='soon' is not a time"):
            environment.window(slots[0], until="soon")
        body = LabelsBody.model_validate({"on": "request_id", "labels": [{"request_id": "req-0", "row": 1,
                                                                         "label": "virginica"}]})  # fmt: skip
        assert serve_labels(environment, body)["stored"] == 1
        wanted = r"'rose' is not one of the classes of iris@v1\.0\.0 .* nor one of the classes of iris@v1\.1\.0"
        with pytest.raises(InvalidInput, match=wanted):
            rose = {"on": "request_id", "labels": [{"request_id": "req-0", "label": "rose"}]}
            serve_labels(environment, LabelsBody.model_validate(rose))
    finally:
        log.close()
    labels = pd.DataFrame({"request_id": ["req-1", "req-2"], "label": ["virginica", "setosa"]})
    assert ingest_labels(repo, "iris", "prod", labels).stored == 2  # the log file: the same union


# ----------------------------------------------------------------------------- real projects
KINDS = {  # name: (dataset loader, labels as, regressor)
    "iris": ("load_iris", "names", False),
    "cancer-bool": ("load_breast_cancer", "bool", False),
    "cancer-int": ("load_breast_cancer", "int", False),
    "diabetes": ("load_diabetes", "float", True),
}


def _dataset(loader: str, kind: str) -> pd.DataFrame:
    from sklearn import datasets

    loaded = getattr(datasets, loader)(as_frame=True)
    frame = loaded.frame[loaded.feature_names[:5]].copy()
    target = loaded.frame["target"]
    if kind == "names":
        frame["target"] = np.asarray(loaded.target_names)[target.to_numpy()]
    elif kind == "bool":
        frame["target"] = target.astype(bool)
    else:
        frame["target"] = target.astype("int64" if kind == "int" else "float64")
    return frame


@pytest.fixture(scope="module")
def kinds_project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """One project, four bundles (text, boolean and integer classes; a regressor), each live in
    prod with 60 logged rows under keys ``NAME-0..2``."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    repo = new_repo(tmp_path_factory.mktemp("labels") / "project")
    registry = Registry.init(repo)
    for name, (loader, kind, regressor) in KINDS.items():
        frame = _dataset(loader, kind)
        X, y = frame.drop(columns="target"), frame["target"]
        model = (RandomForestRegressor if regressor else RandomForestClassifier)(n_estimators=5, random_state=0)
        registry.register(name, model.fit(X, y), frame, target="target", version="v1.0.0")
        deploy(repo, f"{name}@v1.0.0", "prod", reason="first")
        log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
        try:
            environment = ServingEnvironment(repo, name, "prod", log=log)
            environment.start()
            for i in range(3):
                environment.predict(X.iloc[i * 20 : (i + 1) * 20], key=f"{name}-{i}", request_id=f"{name}-req-{i}")
        finally:
            log.close()
    return repo


def _window(repo: Path, name: str) -> pd.DataFrame:
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        return log.window(name, "prod")
    finally:
        log.close()


@pytest.mark.parametrize(
    ("name", "text", "typed"),
    [("iris", "virginica", "virginica"), ("cancer-bool", "true", True), ("cancer-int", "1", 1),
     ("diabetes", "151.5", 151.5)],
)  # fmt: skip
def test_labels_from_text_keep_the_versions_types_in_the_window(
    kinds_project: Path, tmp_path: Path, name: str, text: str, typed: object
) -> None:
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"key": [f"{name}-1"], "label": [text]}).to_csv(csv, index=False)
    done = ingest_labels(kinds_project, name, "prod", csv, on="key")
    assert isinstance(done, LabelIngest) and (done.stored, done.via) == (20, "log")

    by_id = pd.DataFrame({"request_id": [f"{name}-req-2"], "row": [3], "label": [text]})
    assert ingest_labels(kinds_project, name, "prod", by_id).stored == 1
    window = _window(kinds_project, name)
    labelled = window[window["label"].notna()]
    assert len(labelled) == 21
    assert all(type(v) is type(typed) and v == typed for v in labelled["label"])
    answer_type = {"iris": str, "cancer-bool": bool, "cancer-int": int, "diabetes": float}[name]
    assert type(window["prediction"].tolist()[0]) is answer_type  # labels and predictions compare like with like


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [("cancer-int", "yes", "'yes' is not one of the classes of cancer-int@v1.0.0 (integers: 0, 1)"),
     ("diabetes", "high", "'high' is not a finite number (diabetes@v1.0.0 is a regressor)"),
     ("iris", "Setosa", "'Setosa' is not one of the classes of iris@v1.0.0 (text: 'setosa', 'versicolor'")],
)  # fmt: skip
def test_a_wrong_label_type_is_one_line_and_stores_nothing(
    kinds_project: Path, tmp_path: Path, name: str, bad: str, message: str
) -> None:
    csv = tmp_path / "labels.csv"
    good = {"iris": "setosa", "cancer-int": "0", "diabetes": "10"}[name]
    pd.DataFrame({"key": [f"{name}-0", f"{name}-0"], "label": [good, bad]}).to_csv(csv, index=False)
    before = _window(kinds_project, name)["label"].notna().sum()
    with pytest.raises(InvalidInput) as caught:
        ingest_labels(kinds_project, name, "prod", csv, on="key")
    assert caught.value.message.startswith("labels.csv line 3: label ")
    assert message in caught.value.message
    assert _window(kinds_project, name)["label"].notna().sum() == before
