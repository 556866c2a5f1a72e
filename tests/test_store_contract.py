"""One log contract, two backends: the DuckDB file and the shared PostgreSQL store answer alike.

Every test here runs against both logs (the ``log`` fixture is parametrized): a gate window with
text, boolean and integer class labels and a regressor, NaN and pandas' nullable inputs, labels
that arrive later, promotion, quarantine, ``affected``, an idempotent backfill and the
production view. ``test_same_frames`` then feeds both the same requests and compares what they
give, frame for frame. One DuckDB file and one store database serve the whole module: each
test logs under a bundle name of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbackkit.errors import InvalidInput
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.logs import open_log
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.queries import output_counts, primary_outputs
from tests.postgres import PgCluster

ENV = "prod"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

INPUTS = pd.DataFrame(
    {
        "income": [52_000.5, np.nan, 61_250.25, 48_000.0],
        "visits": pd.array([3, None, 7, 0], dtype="Int64"),
        "member": pd.array([True, None, False, True], dtype="boolean"),
        "city": pd.array(["Lyon", None, "Graz", "Oslo"], dtype="string"),
        "plan": pd.Categorical(["gold", "basic", None, "gold"]),
        "note": ["a", None, "c", "d"],
        "age": np.array([31, 45, 27, 60], dtype="int64"),
    }
)
"""Four rows of a customer frame: NaN, nullable Int64/boolean/string, a category, object text."""

CLASSIFIERS = {
    "text": pd.DataFrame({"churn": ["yes", "no", "yes", "no"], "p_yes": [0.91, 0.12, 0.77, np.nan]}),
    "bool": pd.DataFrame({"churn": [True, False, True, False]}),
    "int": pd.DataFrame({"tier": np.array([2, 0, 1, 2], dtype="int64")}),
    "regressor": pd.DataFrame({"spend": [1234.5, np.nan, 87.25, 0.0]}),
}


@pytest.fixture(scope="module")
def store_database(postgres: PgCluster) -> str:
    """One store database for the module (tests keep apart by bundle name)."""
    return postgres.create_database(f"rk_contract_{uuid.uuid4().hex[:8]}")


def _open(backend: str, request: pytest.FixtureRequest, folder: Path) -> PredictionLog | PostgresLog:
    if backend == "duckdb":
        return PredictionLog(folder / "predictions.duckdb")
    return PostgresLog(open_store(request.getfixturevalue("store_database")), flush_interval=0.05)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The log under test, one per backend for the module."""
    opened = _open(request.param, request, tmp_path_factory.mktemp("duck"))
    opened.start()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A DuckDB log and a store log side by side (fed the same requests)."""
    pair = tuple(_open(b, request, tmp_path_factory.mktemp("pair")) for b in ("duckdb", "postgres"))
    for opened in pair:
        opened.start()
    yield pair
    for opened in pair:
        opened.close()


def fresh() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


def serve(
    log: Any, name: str, version: str, outputs: pd.DataFrame | None, *, n: int = 1, deployment: str | None = None,
    inputs: pd.DataFrame = INPUTS, start: datetime = START, error: str | None = None, prefix: str = "r",
) -> list[str]:  # fmt: skip
    """Log ``n`` requests of ``inputs`` scored by ``version``; returns their ids."""
    ids = []
    for k in range(n):
        request_id = f"{prefix}{k:03d}-{name}"
        meta = {
            "request_id": request_id, "time": start + timedelta(seconds=k, microseconds=k), "env": ENV,
            "name": name, "version": version, "bundle_id": f"b-{version}", "slot": "live",
            "deployment": deployment or f"{name}@{version}", "latency_ms": 1.5 + k, "error": error,
            "primary": None if outputs is None else str(outputs.columns[0]), "key": f"customer-{k % 2}",
        }  # fmt: skip
        log.record(meta, inputs, outputs)
        ids.append(request_id)
    return ids


def plain(values: pd.Series) -> list[Any]:
    """Values as plain Python objects, every missing value as None."""
    return [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in values.astype(object)]


LABELS = {"text": ("yes", "no"), "bool": (True, False), "int": (2, 0), "regressor": (10.5, 11.25)}
"""Per kind: the label first given to the first two requests' rows, and the one that replaces it on one row."""


@pytest.mark.parametrize("kind", list(CLASSIFIERS))
def test_window_gives_back_typed_outputs_inputs_and_labels(log: Any, kind: str) -> None:
    name, outputs = fresh(), CLASSIFIERS[kind]
    ids = serve(log, name, "v1.0.0", outputs, n=3)
    first, latest = LABELS[kind]
    rows = len(INPUTS)
    labels = pd.DataFrame({"request_id": [i for i in ids[:2] for _ in range(rows)], "row": list(range(rows)) * 2})
    answer = log.add_labels(name, ENV, labels.assign(label=first), "request_id")
    assert (answer["stored"], answer["unknown"], answer["rows_labelled"]) == (8, 0, 8)
    answer = log.add_labels(name, ENV, pd.DataFrame({"request_id": [ids[0]], "label": [latest]}), "request_id")
    assert (answer["stored"], answer["replaced"], answer["rows_labelled"]) == (1, 1, 8)
    window = log.window(name, ENV, version="v1.0.0")
    assert len(window) == 3 * rows
    assert list(window.columns) == [*INPUTS.columns, *outputs.columns, *META]
    for feature in INPUTS.columns:
        assert plain(window[feature]) == plain(INPUTS[feature]) * 3, feature
    for output in outputs.columns:
        assert plain(window[output]) == plain(outputs[output]) * 3, output
        assert window[output].dtype.kind == outputs[output].dtype.kind
    assert window["request_id"].tolist() == [i for i in ids for _ in range(rows)]
    assert window["row"].tolist() == list(range(rows)) * 3
    assert plain(window["label"]) == [latest, *[first] * 7, *[None] * 4]
    assert all(type(v) is type(first) for v in plain(window["label"])[:8])


META = ["latency_ms", "error", "time", "request_id", "row", "key", "label"]
"""The columns a window gives after the inputs and outputs."""


def test_window_by_deployment_reads_the_newest_rows_of_it_since_until(log: Any) -> None:
    name = fresh()
    serve(log, name, "v1.0.0", CLASSIFIERS["text"], n=5, deployment="live-1")
    serve(log, name, "v1.1.0", CLASSIFIERS["text"], n=2, deployment="canary-1", prefix="c")
    window = log.window(name, ENV, deployment="live-1", limit=8)
    assert len(window) == 8 and window["request_id"].iloc[0] == f"r003-{name}"
    assert window["time"].is_monotonic_increasing
    since, until = (
        (START + timedelta(seconds=1)).isoformat(),
        (START + timedelta(seconds=3, microseconds=3)).isoformat(),
    )
    window = log.window(name, ENV, deployment="live-1", since=since, until=until)
    assert sorted(set(window["request_id"])) == [f"r00{k}-{name}" for k in (1, 2, 3)]
    assert log.window(name, ENV, deployment="nobody").empty


def test_promote_moves_staged_rows_to_the_production_view_once(log: Any) -> None:
    name = fresh()
    log.set_stage("canary-7", name, ENV, "v2.0.0", "staging")
    serve(log, name, "v2.0.0", CLASSIFIERS["bool"], n=2, deployment="canary-7")
    assert log.stage_of("canary-7") == "staging" and log.knows("canary-7") and not log.knows("canary-8")
    assert len(log.window(name, ENV, deployment="canary-7")) == 8  # staged rows are gate material
    assert log.production(name).empty
    assert log.promote("canary-7") == 8
    assert log.stage_of("canary-7") == "production"
    production = log.production(name)
    assert len(production) == 8 and set(production["status"]) == {"ok"}
    assert log.promote("canary-7") == 0
    log.set_stage("shadow-7", name, ENV, "v3.0.0", "shadow")
    serve(log, name, "v3.0.0", CLASSIFIERS["bool"], n=1, deployment="shadow-7")
    assert log.promote("shadow-7") == 0 and log.stage_of("shadow-7") == "shadow"
    assert len(log.window(name, ENV, deployment="shadow-7")) == 4 and len(log.production(name)) == 8


def rescore(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The version rolled back to: a regressor over the stored inputs."""
    spend = inputs["income"].astype("float64") / 1000 + inputs["age"].astype("float64")
    return pd.DataFrame({"spend": spend}), "v1.0.0", "b-v1.0.0"


def test_quarantine_affected_and_backfill_twice_change_nothing_the_second_time(log: Any) -> None:
    name = fresh()
    serve(log, name, "v1.0.0", CLASSIFIERS["regressor"], n=2, prefix="good")
    serve(log, name, "v1.1.0", CLASSIFIERS["regressor"], n=3)
    assert log.quarantine(name, ENV, "v1.1.0") == 12
    serve(log, name, "v1.1.0", CLASSIFIERS["regressor"], n=1, prefix="late")  # in flight at rollback
    affected = log.affected(name, ENV, "v1.1.0", limit=5)
    assert {k: affected[k] for k in ("rows", "quarantined", "backfilled", "shadow_rows")} == {
        "rows": 16, "quarantined": 16, "backfilled": 0, "shadow_rows": 0,
    }  # fmt: skip
    assert affected["tables"] == [{"table": "predictions", "rows": 16}]
    assert len(affected["sample"]) == 5 and affected["sample"][0]["outputs"] == {"spend": 1234.5}
    assert affected["first"] < affected["last"]
    assert set(log.production(name)["version"]) == {"v1.0.0"}
    first = log.backfill(name, ENV, "v1.1.0", rescore, batch=5, primary="spend")
    assert first == {"rescored": 16, "already_done": 0, "failed": 0}
    again = log.backfill(name, ENV, "v1.1.0", rescore, batch=5, primary="spend")
    assert again == {"rescored": 0, "already_done": 16, "failed": 0}
    production = log.production(name)
    corrected = production[production["status"] == "backfill"]
    assert len(corrected) == 16 and set(corrected["version"]) == {"v1.0.0"}
    assert corrected["replaces"].str.endswith((":0", ":1", ":2", ":3")).all()
    expected = INPUTS["income"] / 1000 + INPUTS["age"]
    assert sorted(corrected["primary_output"].dropna()) == sorted(expected.dropna().tolist() * 4)
    audit = log.query(
        "SELECT old_version, new_version, count(*) AS n FROM backfill_audit WHERE name = ? GROUP BY 1, 2", [name]
    )
    assert audit.to_dict("records") == [{"old_version": "v1.1.0", "new_version": "v1.0.0", "n": 16}]
    assert log.affected(name, ENV, "v1.1.0")["backfilled"] == 16


def test_a_backfill_that_cannot_rescore_keeps_its_rows_quarantined(log: Any) -> None:
    name = fresh()
    serve(log, name, "v1.1.0", CLASSIFIERS["text"], n=2)
    log.quarantine(name, ENV, "v1.1.0")

    def broken(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
        raise ValueError("the model file is gone")

    answer = log.backfill(name, ENV, "v1.1.0", broken)
    assert answer == {
        "rescored": 0,
        "already_done": 0,
        "failed": 8,
        "errors": ["8 rows: ValueError: the model file is gone"],
    }
    assert log.affected(name, ENV, "v1.1.0")["quarantined"] == 8


def test_failed_requests_and_unknown_labels_count_alike(log: Any) -> None:
    name = fresh()
    ids = serve(log, name, "v1.0.0", None, n=1, inputs=INPUTS.head(2), error="ValueError: bad input")
    window = log.window(name, ENV, version="v1.0.0")
    assert window["error"].tolist() == ["ValueError: bad input"] * 2 and window["latency_ms"].tolist() == [1.5, 1.5]
    answer = log.add_labels(
        name, ENV, pd.DataFrame({"request_id": [ids[0], "nope"], "label": ["yes", "no"]}), "request_id"
    )
    assert (answer["stored"], answer["unknown"], answer["unknown_sample"]) == (1, 1, ["nope:0"])


def test_same_frames(both: tuple[Any, Any]) -> None:
    """The same requests into both backends: equal windows, answers, views and query results."""
    name = fresh()
    for log in both:
        ids = serve(log, name, "v1.0.0", CLASSIFIERS["text"], n=4)
        serve(log, name, "v1.0.0", CLASSIFIERS["text"], n=1, inputs=INPUTS[["income", "city"]], prefix="narrow")
        serve(log, name, "v1.0.0", None, n=1, error="boom", prefix="failed")
        log.add_labels(name, ENV, pd.DataFrame({"request_id": ids, "label": ["yes", "no", "yes", "no"]}), "request_id")
        log.add_labels(name, ENV, pd.DataFrame({"key": ["customer-1"], "label": ["yes"]}), "key")
    duck, pg = both
    pd.testing.assert_frame_equal(pg.window(name, ENV, version="v1.0.0"), duck.window(name, ENV, version="v1.0.0"))
    assert pg.affected(name, ENV, "v1.0.0") == duck.affected(name, ENV, "v1.0.0")
    volatile = ["input_hash", "batch_id"]  # each backend's hash function; batch ids are random
    pd.testing.assert_frame_equal(
        pg.production(name).drop(columns=volatile).sort_values(["request_id", "row"], ignore_index=True),
        duck.production(name).drop(columns=volatile).sort_values(["request_id", "row"], ignore_index=True),
    )
    pd.testing.assert_series_equal(primary_outputs(pg, name, ENV, "v1.0.0"), primary_outputs(duck, name, ENV, "v1.0.0"))
    counts = [output_counts(log, name, ENV, "v1.0.0", "churn").sort_values("value", ignore_index=True) for log in both]
    pd.testing.assert_frame_equal(counts[0], counts[1])
    assert counts[0].to_dict("records") == [{"value": '"no"', "n": 10}, {"value": '"yes"', "n": 10}]


def test_a_version_that_logged_infinite_scores_counts_its_outputs_alike(both: tuple[Any, Any]) -> None:
    name = fresh()
    scores = pd.DataFrame({"churn": ["yes", "no", "yes", "yes"], "p_yes": [np.inf, -np.inf, 0.5, np.nan]})
    for log in both:
        serve(log, name, "v1.0.0", scores, n=2)
    for column in ("churn", "p_yes"):
        counts = [
            output_counts(log, name, ENV, "v1.0.0", column).sort_values("value", ignore_index=True) for log in both
        ]
        pd.testing.assert_frame_equal(counts[0], counts[1])
    assert counts[0]["n"].sum() == 8


NULLABLE = {
    "float": st.lists(st.one_of(st.none(), st.floats(allow_nan=False, width=64)), min_size=1, max_size=4),
    "Int64": st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), min_size=1, max_size=4),
    "boolean": st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=4),
    "string": st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=4),
    "category": st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ç"])), min_size=1, max_size=4),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    kinds = draw(st.lists(st.sampled_from(list(NULLABLE)), min_size=1, max_size=4))
    tag = uuid.uuid4().hex[:6]  # a signature of its own: the DuckDB log types an inputs table by its first rows
    rows = draw(st.integers(1, 4))
    columns = {}
    for k, kind in enumerate(kinds):
        values = (draw(NULLABLE[kind]) * 4)[:rows]
        dtype = "float64" if kind == "float" else kind
        columns[f"{kind}_{k}_{tag}"] = pd.Series(
            [np.nan if v is None and kind == "float" else v for v in values], dtype=dtype
        )
    return pd.DataFrame(columns)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=frames())
def test_any_typed_inputs_come_back_alike_from_both(both: tuple[Any, Any], inputs: pd.DataFrame) -> None:
    name = fresh()
    outputs = pd.DataFrame({"p": np.linspace(0, 1, len(inputs))})
    for log in both:
        serve(log, name, "v1.0.0", outputs, inputs=inputs)
    duck, pg = (log.window(name, ENV, version="v1.0.0") for log in both)
    pd.testing.assert_frame_equal(pg, duck)
    for column in inputs.columns:
        assert plain(pg[column]) == plain(inputs[column])
    pd.testing.assert_frame_equal(both[1].recent_inputs(name, ENV), inputs)  # preflight: the dtypes scored


def test_open_log_opens_the_store_and_refuses_sinks_beside_it(
    tmp_path: Path, store_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ProjectPaths(tmp_path)
    paths.config_dir.mkdir()
    monkeypatch.setenv("ROLLBACKKIT_STORE", store_database)
    log = open_log(paths, process=True, existing=True, threads=1, replica="r1")
    try:
        assert isinstance(log, PostgresLog) and log.replica == "r1"
    finally:
        log.close()
    paths.config_file.write_text("sinks:\n  - type: parquet\n    path: out\n")
    with pytest.raises(InvalidInput, match="both store: and sinks:"):
        open_log(paths)
    monkeypatch.setenv("ROLLBACKKIT_STORE", "")
    duck = open_log(paths, sinks=False)
    assert isinstance(duck, PredictionLog)
    duck.close()


def test_replicas_share_one_log_and_a_quarantine_catches_the_others_late_rows(store_database: str) -> None:
    """Two replicas on one store: each sees the other's rows; one's quarantine marks the other's
    later rows; two backfills at once correct each row once."""
    store = open_store(store_database)
    replicas = [PostgresLog(store, flush_interval=0.05, replica=r) for r in ("r1", "r2")]
    for replica in replicas:
        replica.start()
    try:
        one, two = replicas
        name = fresh()
        serve(one, name, "v1.1.0", CLASSIFIERS["int"], n=2, prefix="one")
        serve(two, name, "v1.1.0", CLASSIFIERS["int"], n=2, prefix="two")
        two.flush()
        assert len(one.window(name, ENV, version="v1.1.0")) == 16
        assert one.quarantine(name, ENV, "v1.1.0") == 16
        serve(two, name, "v1.1.0", CLASSIFIERS["int"], n=1, prefix="late")
        two.flush()
        assert one.affected(name, ENV, "v1.1.0")["quarantined"] == 20
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda log: log.backfill(name, ENV, "v1.1.0", rescore, batch=4), replicas))
        assert sum(a["rescored"] for a in answers) == 20 and not any(a["failed"] for a in answers)
        assert (one.production(name)["status"] == "backfill").sum() == 20
        writers = one.query("SELECT DISTINCT replica FROM predictions WHERE name = ? AND replaces IS NULL", [name])
        assert set(writers["replica"]) == {"r1", "r2"}
    finally:
        for replica in replicas:
            replica.close()
