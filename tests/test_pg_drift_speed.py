"""The PostgreSQL writer keeps each batch's input columns in its commit, so drift reads never decode.

A store's writer commits typed inputs (float with NaN and infinities, Int64 with gaps, nullable
boolean, string with gaps, a category, mixed objects, a column named by a number); with no read at all, each
column is already kept as the array the SQL count reads, in the kind drift bins it by, and the
first read fetches no blob of the range. A store whose batches were written before (the writer
keeping nothing) is counted alike: its first read keeps them, as DuckDB counts the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from rollbackkit.serving.postgres import binned, binned_sql, encode, rows, values
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog import binning
from rollbackkit.serving.predlog.log import PredictionLog

from .postgres import PgCluster

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
NAME, ENV = "speedy", "prod"
QUESTIONS: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("income", [40_000.0, 50_000.0, 60_000.0], {}),
    ("calls", [0.5, 1.5, 2.5], {"by": "region"}),
    ("promo", ["True", "False"], {"by": "plan"}),
    ("plan", ["basic", "gold"], {}),
    ("7", [0.25, 0.75], {}),
    ("mixed", ["a", "1.0", "True"], {}),
]


def _inputs(k: int, rng: np.random.Generator) -> pd.DataFrame:
    n = 30
    income = rng.normal(50_000, 9_000, n)
    income[::7], income[3], income[4] = np.nan, np.inf, -np.inf
    return pd.DataFrame(
        {
            "income": income,
            "calls": pd.array([None if i % 4 == 0 else i % 3 for i in range(n)], dtype="Int64"),
            "promo": pd.array([None if i % 5 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
            "region": pd.array([None if i % 6 == 0 else ["north", "south"][i % 2] for i in range(n)], "string"),
            "plan": pd.Categorical(rng.choice(["basic", "gold", "trial"], n), categories=["basic", "gold", "trial"]),
            7: rng.random(n),
            "mixed": pd.Series([["a", 1.0, True, None, 2][i % 5] for i in range(n)], dtype=object),
        }
    )


def _logged(url: str, duck: PredictionLog | None) -> PostgresLog:
    store = PostgresLog(open_store(url), flush_interval=0.05, replica="r1")
    rng = np.random.default_rng(24)
    for k in range(6):
        inputs = _inputs(k, rng)
        version = "v1" if k < 4 else "v2"
        meta = {
            "request_id": f"q{k}", "time": START + timedelta(minutes=20 * k), "env": ENV, "name": NAME,
            "version": version, "bundle_id": f"b-{version}", "slot": "live", "deployment": f"{NAME}@{version}",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        outputs = pd.DataFrame({"p": rng.random(len(inputs))})
        store.record(meta, inputs, outputs)
        if duck is not None:
            duck.record(meta, inputs, outputs)
        assert store.flush()  # one batch (one blob) per request
    return store


@pytest.fixture(scope="module")
def logs(postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same requests in DuckDB, in a store, and in a store written before the writer kept columns."""
    duck = PredictionLog(tmp_path_factory.mktemp("pgspeed") / "predictions.duckdb")
    duck.start()
    new_url = postgres.create_database(f"rk_speed_{uuid.uuid4().hex[:8]}")
    old_url = postgres.create_database(f"rk_speed_{uuid.uuid4().hex[:8]}")
    new = _logged(new_url, duck)
    duck.flush()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(rows, "frame_rows", lambda *args: [])  # the writer before: blobs only
        old = _logged(old_url, None)
    yield {"duck": duck, "new": new, "old": old, "new_url": new_url, "old_url": old_url}
    for log in (duck, new, old):
        log.close()


def _kept(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url) as con:
        return con.execute(
            'SELECT "column", kind, count(*) FROM rollbackkit.log_input_values GROUP BY 1, 2 ORDER BY 1, 2'
        ).fetchall()


def _ask(log: Any, column: str, edges: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    return log.binned(NAME, ENV, column, edges, **{"windows": 3, **options})


def _same(one: dict[str, Any], other: dict[str, Any]) -> None:
    for key in ("slices", "counts", "n", "missing", "start", "end", "others", "unseen"):
        assert one.get(key) == other.get(key), key
    if one.get("sums") is not None:
        np.testing.assert_allclose(np.asarray(one["sums"]), np.asarray(other["sums"]), rtol=1e-12)


def test_a_write_keeps_every_column_and_the_first_drift_read_fetches_no_blob_of_the_range(
    logs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = [("7", "n", 6), ("calls", "n", 6), ("income", "n", 6), ("plan", "t", 6), ("promo", "t", 6)]
    assert _kept(logs["new_url"]) == [*expected[:3], ("mixed", "t", 6), *expected[3:], ("region", "t", 6)]  # unread
    store = logs["new"]
    read = type(store)._blobs
    asked: list[int] = []

    def blobs(self: Any, cur: Any, pointers: Any) -> Any:
        asked.append(pointers.num_rows)
        return read(self, cur, pointers)

    monkeypatch.setattr(type(store), "_blobs", blobs)
    answers = [_ask(store, column, edges, options) for column, edges, options in QUESTIONS]
    assert asked and max(asked) == 1  # only the newest blob (its column names), never the six of the range
    for question, answer in zip(QUESTIONS, answers, strict=True):
        _same(answer, _ask(logs["duck"], *question))
        assert sum(map(sum, answer["n"])) + sum(map(sum, answer["missing"])) == 180, question


def test_batches_written_before_are_kept_on_their_first_read_and_count_as_duckdb_does(logs: dict[str, Any]) -> None:
    assert _kept(logs["old_url"]) == []
    for question in QUESTIONS:
        _same(_ask(logs["old"], *question), _ask(logs["duck"], *question))
    kept = _kept(logs["old_url"])
    assert ("income", "n", 6) in kept and ("region", "t", 6) in kept  # read once, kept for the next reads


def test_a_text_holding_a_nul_is_not_kept_so_its_batch_is_still_written() -> None:
    frame = pd.DataFrame({"income": [1.0, np.nan], "note": pd.array(["a\x00b", None], "string"), "plan": ["x", "y"]})
    kept = values.frame_rows(frame, "b1", "s", encode.inputs_blob(frame))
    assert [(column, kind) for _, _, column, kind, _ in kept] == [
        ("income", "n"),
        ("plan", "t"),
    ]


ODD = "odd"
ODD_QUESTIONS: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("nul", ["a", "b"], {}),
    ("dt", ["2024-01-01 00:00:00", "2024-01-02 03:04:05.25"], {}),
    ("dtz", ["2023-12-31 23:00:00+00"], {"by": "dt"}),
    ("x", [0.5, 2.5], {"by": "dtz"}),
]


def _odd(k: int, *, nul_name: bool = True) -> pd.DataFrame:
    """Datetimes with NaT (naive and zoned), a text holding NUL and a column NAME holding one."""
    moments = pd.Series(
        pd.to_datetime(["2024-01-01", None, "2024-01-02 03:04:05.25", None][k % 2 :] * 2, format="ISO8601")
    )
    frame = pd.DataFrame(
        {
            "dt": moments,
            "dtz": moments.dt.tz_localize("Europe/Paris"),
            "nul": pd.array((["a\x00b", "a", None, "b"] * 2)[: len(moments)], "string"),
            "x": np.linspace(0, 3, len(moments)),
        }
    )
    return frame.assign(**{"a\x00b": 1.0}) if nul_name else frame


def _write(log: PostgresLog, duck: PredictionLog | None, ks: range, *, nul_name: bool = True) -> None:
    for k in ks:
        meta = {
            "request_id": f"o{k}", "time": START + timedelta(minutes=20 * k), "env": ENV, "name": ODD,
            "version": "v1", "bundle_id": "b-v1", "slot": "live", "deployment": f"{ODD}@v1",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        outputs = pd.DataFrame({"p": np.zeros(len(_odd(k)))})
        log.record(meta, _odd(k, nul_name=nul_name), outputs)
        if duck is not None:
            duck.record(meta, _odd(k, nul_name=False), outputs)
        assert log.flush()
    if duck is not None:
        duck.flush()


@pytest.fixture(scope="module")
def odd(postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store created by the release before (no ``log_input_values``) written to, upgraded (its
    migration), written to again; DuckDB beside it."""
    url = postgres.create_database(f"rk_odd_{uuid.uuid4().hex[:8]}")
    before = PostgresLog(open_store(url), flush_interval=60, replica="r1")
    with psycopg.connect(url) as con:
        con.execute(f"DROP TABLE rollbackkit.{values.VALUES_TABLE}")
    duck = PredictionLog(tmp_path_factory.mktemp("pgodd") / "predictions.duckdb")
    duck.start()
    _write(before, duck, range(2))
    after = PostgresLog(open_store(url), flush_interval=60, replica="r1")  # the upgrade's migration
    _write(after, duck, range(2, 4))
    errors = [log.status()["write_errors"] for log in (before, after)]
    yield {"url": url, "store": after, "duck": duck, "errors": errors}
    for log in (before, after, duck):
        log.close()


def _both(odd: dict[str, Any], column: str, edges: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    """The store's answer, checked equal to DuckDB's."""
    mine, theirs = (log.binned(ODD, ENV, column, edges, windows=2, **options) for log in (odd["store"], odd["duck"]))
    _same(mine, theirs)
    return mine


def test_a_store_of_the_release_before_is_upgraded_and_counts_datetimes_and_nul_texts_as_duckdb(
    odd: dict[str, Any],
) -> None:
    assert odd["errors"] == [0, 0]  # a NUL in a column's name or texts never fails its batch
    assert _kept(odd["url"]) == [("dt", "t", 2), ("dtz", "t", 2), ("x", "n", 2)]  # kept since the migration
    for question in ODD_QUESTIONS:
        mine = _both(odd, *question)
        assert question[0] != "dt" or sum(map(sum, mine["missing"])) == 16  # every NaT, none a category
    assert ("dt", "t", 4) in _kept(odd["url"])  # the batches written before, kept on their first read


def test_a_read_that_cannot_keep_the_arrays_now_counts_beside_the_blobs(
    odd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def deadlocked(*args: Any) -> None:
        raise psycopg.errors.DeadlockDetected("another reader keeps the same blobs")

    monkeypatch.setattr(binned_sql, "_fill", deadlocked)
    for question in ODD_QUESTIONS:
        _both(odd, *question)


def test_a_request_committed_while_a_drift_read_runs_waits_for_the_next_read(
    postgres: PgCluster, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database(f"rk_race_{uuid.uuid4().hex[:8]}")
    store, late = (PostgresLog(open_store(url), flush_interval=60, replica=r) for r in ("r1", "r2"))
    duck = PredictionLog(tmp_path / "predictions.duckdb")
    duck.start()
    _write(store, duck, range(3), nul_name=False)
    source = binned_sql._source

    def racing(*args: Any) -> Any:
        _write(late, None, range(3, 4), nul_name=False)  # another replica commits between the first pass and the count
        return source(*args)

    monkeypatch.setattr(binned_sql, "_source", racing)
    _same(store.binned(ODD, ENV, "x", [0.5, 2.5], windows=2), duck.binned(ODD, ENV, "x", [0.5, 2.5], windows=2))
    monkeypatch.undo()
    assert sum(map(sum, store.binned(ODD, ENV, "x", [0.5, 2.5], windows=2)["n"])) == sum(len(_odd(k)) for k in range(4))
    for log in (store, late, duck):
        log.close()


def test_the_first_pass_converts_each_blobs_first_and_last_time_not_every_row() -> None:
    req = binning.BinRequest.of(ODD, ENV, "x", [0.5, 1.5], None, None, 2, None, None, False)
    first_pass = binned._first_pass(binning.rows_sql(req, "%s", "postgresql")[0])
    assert "min(t)" in first_pass and "t_us" not in first_pass  # the fast form (rows_sql's PG_MICROS found)
