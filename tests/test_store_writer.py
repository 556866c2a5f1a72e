"""The PostgreSQL log's write side: a replica keeps every answered request, exactly once, whatever the store does.

Rows land where the store says (another replica's stage or quarantine counts), inputs and
outputs come back typed as the DuckDB log gives them, the request path never waits or fails
on the store, a store that goes away keeps rows buffered (bounded) until it is back, and a
batch whose commit was cut off is never written twice. Labels answer as the DuckDB log's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from rollbackkit.errors import InvalidInput, StoreError
from rollbackkit.serving.postgres.encode import inputs_blob, inputs_frame
from rollbackkit.serving.postgres.labels import PgLogLabels
from rollbackkit.serving.postgres.logbase import PgLogBase
from rollbackkit.serving.postgres.store import Store, open_store
from rollbackkit.serving.postgres.writer import PgLogWriter
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.queries import decode_outputs

from .postgres import start_cluster


class Log(PgLogLabels, PgLogWriter):
    """The write side and labels of the store's log (the whole log is ``PostgresLog``)."""


def _meta(request_id: str, *, deployment: str = "churn-live", version: str = "v1.0.0", key: str | None = None,
          primary: str | None = "prediction") -> dict[str, Any]:  # fmt: skip
    return {
        "request_id": request_id, "time": datetime.now(UTC), "env": "prod", "name": "churn", "version": version,
        "bundle_id": "b-" + version, "slot": "blue", "deployment": deployment, "latency_ms": 2.5, "error": None,
        "primary": primary, "key": key,
    }  # fmt: skip


def _inputs(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure": np.linspace(0.1, 7.3, rows),
            "seats": pd.array([3, None, *range(rows - 2)][:rows], dtype="Int64"),
            "annual": pd.array([True, None, *([False] * rows)][:rows], dtype="boolean"),
            "plan": pd.array(["pro", None, *(["free"] * rows)][:rows], dtype="string"),
            "region": pd.Categorical(["west", "east", *(["west"] * rows)][:rows]),
        }
    )


def _count(store: Store, sql: str, params: tuple[Any, ...] = ()) -> int:
    with store.connect(autocommit=True) as con:
        return int(con.execute(sql, params).fetchone()[0])  # type: ignore[index]


@pytest.fixture
def store(store_url: str) -> Store:
    return open_store(store_url)


@pytest.fixture
def log(store: Store) -> Iterator[Log]:
    opened = Log(store, flush_interval=0.05, replica="r1")
    opened.start()
    yield opened
    opened.close(wait=5)


def test_rows_land_where_the_store_says_even_when_another_replica_changed_it(store: Store, log: Log) -> None:
    other = PgLogBase(store)  # another replica declares the stages
    other.set_stage("churn-canary", "churn", "prod", "v1.1.0", "staging")
    other.set_stage("churn-shadow", "churn", "prod", "v1.2.0", "shadow")
    log.record(_meta("live-1"), _inputs(3), pd.DataFrame({"prediction": ["yes", "no", "yes"]}))
    log.record(_meta("canary-1", deployment="churn-canary", version="v1.1.0"), _inputs(2),
               pd.DataFrame({"prediction": ["no", "no"]}))  # fmt: skip
    log.record(_meta("live-1", deployment="churn-shadow", version="v1.2.0"), _inputs(3),
               pd.DataFrame({"prediction": ["no"] * 3}))  # fmt: skip
    assert log.flush()
    counts = {t: _count(store, f"SELECT count(*) FROM {t}") for t in
              ("predictions", "predictions_staging", "predictions_shadow", "predictions_production")}  # fmt: skip
    assert counts == {"predictions": 3, "predictions_staging": 2, "predictions_shadow": 3, "predictions_production": 3}

    with store.connect(autocommit=True) as con:  # another replica quarantines v1.1.0 and promotes the shadow's twin
        con.execute("INSERT INTO log_quarantine VALUES ('churn', 'prod', 'v1.1.0', now())")
    other.set_stage("churn-canary-2", "churn", "prod", "v1.1.0", "production")  # a fresh deploy lifts quarantine
    with store.connect(autocommit=True) as con:
        con.execute("INSERT INTO log_quarantine VALUES ('churn', 'prod', 'v1.1.0', now())")
    log.record(_meta("late-1", deployment="churn-canary", version="v1.1.0"), _inputs(1),
               pd.DataFrame({"prediction": ["no"]}))  # fmt: skip
    assert log.flush()
    late = _count(
        store, "SELECT count(*) FROM predictions_staging WHERE request_id = 'late-1' AND status = 'quarantined'"
    )
    assert late == 1
    assert _count(store, "SELECT count(DISTINCT replica) FROM predictions WHERE replica = 'r1'") == 1
    assert log.status() | {"store": None} == {
        "write_errors": 0, "last_write_error": None, "unwritten": 0, "sink_errors": 0, "buffered": 0,
        "buffered_bytes": 0, "dropped": 0, "reachable": True, "reconnects": 0, "store": None,
    }  # fmt: skip
    other._close_connection()


CLASSIFIERS = [
    pd.DataFrame({"prediction": ["yes", "no", None], "proba": [0.25, np.nan, 1 / 3]}),  # text labels
    pd.DataFrame({"prediction": [True, False, True], "proba": [0.9, 0.1, 0.5]}),  # boolean labels
    pd.DataFrame({"prediction": [0, 2, 1], "proba": np.array([0.1, 0.7, np.inf], dtype="float32")}),  # int labels
    pd.DataFrame({"prediction": [1.5, np.nan, -0.0]}),  # a regressor
    pd.DataFrame({"prediction": pd.array([1, None, 3], dtype="Int64"), "ok": pd.array([True, None, False], "boolean")}),
]


def test_inputs_and_outputs_come_back_typed_as_the_duckdb_log_gives_them(
    store: Store, log: Log, tmp_path: Path
) -> None:
    duck = PredictionLog(tmp_path / "predictions.duckdb")
    inputs = _inputs(3)
    inputs["tenure"] = [0.1 + 0.2, -0.0, 5e-324]  # float bits: 0.30000000000000004, a negative zero, a subnormal
    for k, outputs in enumerate(CLASSIFIERS):
        for target in (log, duck):
            target.record(_meta(f"r-{k}"), inputs, outputs)
    assert log.flush()
    duck.flush()
    with store.connect(autocommit=True) as con:
        rows = con.execute('SELECT request_id, outputs, inputs_batch, inputs_table, input_at FROM predictions '
                           'ORDER BY request_id, "row"').fetchall()  # fmt: skip
        blobs = {(b, s): bytes(a) for b, s, a in con.execute("SELECT batch_id, signature, arrow FROM log_inputs")}
    wanted = duck.query('SELECT request_id, outputs FROM predictions ORDER BY request_id, "row"')
    for k in range(len(CLASSIFIERS)):
        mine = [text for rid, text, *_ in rows if rid == f"r-{k}"]
        theirs = wanted[wanted["request_id"] == f"r-{k}"]["outputs"].tolist()
        pd.testing.assert_frame_equal(decode_outputs(mine), decode_outputs(theirs))
    batch, signature, at = rows[0][2], rows[0][3], [r[4] for r in rows[:3]]
    stored = inputs_frame(blobs[(batch, signature)]).iloc[at].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, inputs)
    assert [np.float64(v).tobytes() for v in stored["tenure"]] == [np.float64(v).tobytes() for v in inputs["tenure"]]
    duck.close()


@settings(max_examples=30, deadline=None)
@given(
    hpd.data_frames(
        [
            hpd.column("f", dtype=float),
            hpd.column("i", elements=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), dtype=object),
            hpd.column("b", elements=st.one_of(st.none(), st.booleans()), dtype=object),
            hpd.column("s", elements=st.one_of(st.none(), st.text(max_size=6)), dtype=object),
        ],
        index=hpd.range_indexes(min_size=1, max_size=8),
    )
)
def test_any_input_frame_round_trips_through_a_blob(frame: pd.DataFrame) -> None:
    frame = frame.astype({"i": "Int64", "b": "boolean", "s": "string"}).assign(c=lambda f: f["s"].astype("category"))
    back = inputs_frame(inputs_blob(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert back["f"].to_numpy().tobytes() == frame["f"].to_numpy().tobytes()  # NaN payloads and -0.0 too


def test_a_full_buffer_drops_and_counts_never_waits_or_raises(store: Store) -> None:
    log = Log(store, buffer_rows=10, replica="r1")  # not started: nothing drains the buffer
    started = time.perf_counter()
    log.record(_meta("big"), _inputs(12), pd.DataFrame({"prediction": ["yes"] * 12}))  # alone: never dropped
    log.record(_meta("r-0"), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
    assert (log.status()["buffered"], log.status()["dropped"]) == (12, 2)
    assert log.flush()
    for k in range(1, 7):
        log.record(_meta(f"r-{k}"), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
    log.record(_meta("broken"), None, None)  # type: ignore[arg-type]  # a caller's bug never reaches the request
    assert time.perf_counter() - started < 2
    assert (log.status()["buffered"], log.status()["dropped"]) == (10, 4)
    assert log.close(wait=5) is None  # the 5 buffered requests are written on close
    assert _count(store, "SELECT count(*) FROM predictions") == 22


def test_the_buffer_is_bounded_in_bytes_too(store: Store) -> None:
    log = Log(store, buffer_bytes=200_000, replica="r1")  # not started: nothing drains the buffer
    wide = pd.DataFrame({"text": pd.array(["x" * 4000] * 10, dtype="string"), "n": np.arange(10.0)})
    for k in range(10):  # ~46 kB a request: four fit, six are dropped, however few rows they are
        log.record(_meta(f"w-{k}"), wide, pd.DataFrame({"prediction": ["yes"] * 10}))
    status = log.status()
    assert (status["buffered"], status["dropped"]) == (40, 60)
    assert 150_000 < status["buffered_bytes"] <= 200_000
    assert log.close(wait=5) is None
    assert log.status()["buffered_bytes"] == 0
    assert _count(store, "SELECT count(DISTINCT request_id) FROM predictions") == 4


def test_a_request_the_store_refuses_is_lost_alone_and_counted(store: Store, log: Log) -> None:
    for k in range(5):
        key = "bad\x00key" if k == 2 else f"customer-{k}"  # PostgreSQL text cannot hold a NUL
        log.record(_meta(f"r-{k}", key=key), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
    assert log.flush()
    assert _count(store, "SELECT count(DISTINCT request_id) FROM predictions") == 4
    status = log.status()
    assert (status["unwritten"], status["buffered"], status["reachable"]) == (1, 0, True)
    assert status["last_write_error"].startswith("request r-2: ")


@pytest.mark.parametrize("state", ["54000", "53200"])  # program limit; out of memory: a batch too big
def test_a_request_the_store_refuses_with_an_operational_error_is_lost_alone_not_retried_forever(
    store: Store, log: Log, state: str
) -> None:
    with store.connect(autocommit=True) as admin:  # the store refuses one row for its content
        admin.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.request_id = 'poison' THEN RAISE EXCEPTION 'too big' USING ERRCODE = '{state}'; END IF; "
            "RETURN NEW; END $$"
        )
        admin.execute("CREATE TRIGGER refuse BEFORE INSERT ON predictions FOR EACH ROW EXECUTE FUNCTION refuse()")
    for request_id in ("before", "poison", *(f"after-{k}" for k in range(20))):
        log.record(_meta(request_id), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert log.flush(timeout=5)
    status = log.status()
    assert (status["unwritten"], status["buffered"], status["reachable"]) == (1, 0, True)
    assert status["last_write_error"].startswith("request poison: ")
    assert _count(store, "SELECT count(*) FROM predictions") == 21


def test_a_client_key_of_any_length_is_logged_and_found_by_its_labels(store: Store, log: Log) -> None:
    key = "".join(np.random.default_rng(7).choice(list("abcdefghij0123456789"), 3000))  # beyond a btree entry
    log.record(_meta("long", key=key), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    log.record(_meta("next"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert log.flush(timeout=5)
    assert log.status()["unwritten"] == 0
    assert _count(store, 'SELECT count(*) FROM predictions WHERE "key" = %s', (key,)) == 1
    assert _count(store, "SELECT count(*) FROM predictions") == 2
    result = log.add_labels("churn", "prod", pd.DataFrame({"key": [key], "label": ["yes"]}), on="key")
    assert result["rows_labelled"] == 1


@contextmanager
def _killing_writers(store: Store, every: float) -> Iterator[list[int]]:
    """Terminate the log writer's backend every ``every`` seconds (another connection, as an admin would)."""
    stop, killed = threading.Event(), [0]

    def kill() -> None:
        with store.connect(autocommit=True) as admin:
            while not stop.wait(every):
                found = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE application_name = 'rollbackkit log writer'").fetchone()  # fmt: skip
                killed[0] += int(found[0])  # type: ignore[index]

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


def test_every_request_is_written_exactly_once_when_the_writers_connection_is_killed_mid_load(
    store: Store, log: Log
) -> None:
    with _killing_writers(store, every=0.03) as killed:
        for k in range(1500):
            log.record(_meta(f"r-{k:05d}"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
            if k % 100 == 0:
                time.sleep(0.01)
    assert log.flush(timeout=30)
    assert killed[0] > 0 and log.status()["reconnects"] > 0
    assert _count(store, "SELECT count(*) FROM predictions") == 1500
    assert _count(store, "SELECT count(DISTINCT request_id) FROM predictions") == 1500
    assert _count(store, "SELECT sum(rows) FROM log_batches") == 1500


def test_a_batch_whose_commit_answer_was_lost_is_not_written_again(
    store: Store, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.record(_meta("warm"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert log.flush()
    connection = log._wcon
    assert connection is not None
    committed = connection.transaction
    lost = [0]

    @contextmanager
    def commit_then_lose(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with committed(*args, **kwargs) as tx:
            yield tx
        if not lost[0]:  # the COMMIT went through, its answer never came back
            lost[0] += 1
            connection.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "transaction", commit_then_lose)
    log.record(_meta("once"), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
    assert log.flush()
    assert lost[0] == 1 and log.status()["reconnects"] == 1
    assert _count(store, "SELECT count(*) FROM predictions WHERE request_id = 'once'") == 2
    assert _count(store, "SELECT count(*) FROM log_batches") == 2


def test_a_store_that_goes_away_keeps_rows_buffered_and_flushes_them_once_it_is_back(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "pg")
    try:
        store = open_store(cluster.url())
        log = Log(store, flush_interval=0.05, buffer_rows=50, replica="r1")
        log.start()
        log.record(_meta("before"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
        assert log.flush() and log.stage_of("churn-live") == "production"
        cluster.stop()
        for k in range(30):
            log.record(_meta(f"during-{k}"), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
        assert not log.flush(timeout=0.5)
        status = log.status()
        assert (status["reachable"], status["buffered"], status["dropped"]) == (False, 50, 10)
        assert status["last_write_error"].startswith("store unreachable") and cluster.password not in str(status)
        cluster.start()
        assert log.stage_of("churn-live") == "production"  # a read's idle connection the restart ended: a new one
        assert log.flush(timeout=20)
        assert log.status()["reachable"] and log.status()["reconnects"] >= 1
        assert _count(store, "SELECT count(*) FROM predictions") == 51
        assert _count(store, 'SELECT count(DISTINCT (request_id, "row")) FROM predictions') == 51
        cluster.stop()
        log.record(_meta("after"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
        assert log.close(wait=0.5) == 1  # the store is down: one request left unwritten, said so
    finally:
        cluster.stop(remove=True)


def test_a_promote_on_another_replica_while_this_one_writes_leaves_no_row_behind(store: Store, log: Log) -> None:
    from rollbackkit.serving.postgres.log import PostgresLog

    other = PostgresLog(store, replica="r2")  # the replica the operator's promote reached
    other.set_stage("churn-canary", "churn", "prod", "v1.1.0", "staging")
    for k in range(600):
        log.record(_meta(f"c-{k:04d}", deployment="churn-canary", version="v1.1.0"), _inputs(1),
                   pd.DataFrame({"prediction": ["yes"]}))  # fmt: skip
        if k == 300:
            other.promote("churn-canary")
        elif k % 50 == 0:
            time.sleep(0.02)  # batches commit before, during and after the promote
    assert log.flush()
    assert _count(store, "SELECT count(*) FROM predictions_staging") == 0
    assert _count(store, "SELECT count(DISTINCT request_id) FROM predictions WHERE deployment = 'churn-canary'") == 600
    assert _count(store, "SELECT count(*) FROM log_batches") > 2
    other.close(wait=5)


def _labels(**columns: list) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


LABEL_CALLS = [
    (_labels(request_id=["r-1", "r-1", "r-1"], row=[0, 2, 0], label=["no", "yes", "yes"]), "request_id"),
    (_labels(key=["customer-8", "nobody"], label=[True, False]), "key"),
    (
        _labels(request_id=["r-1", *[f"ghost-{i}" for i in range(12)], "r-3"], label=[1, *([0] * 12), None]),
        "request_id",
    ),
    (_labels(request_id=["r-shadow"], row=[1], label=[2.5]), "request_id"),
]


def test_labels_answer_exactly_as_the_duckdb_log_does(store: Store, log: Log, tmp_path: Path) -> None:
    duck = PredictionLog(tmp_path / "predictions.duckdb")
    for target in (log, duck):
        target.set_stage("churn-shadow", "churn", "prod", "v1.2.0", "shadow")
        target.record(_meta("r-1", key="customer-7"), _inputs(3), pd.DataFrame({"prediction": ["a", "b", "c"]}))
        target.record(_meta("r-2", key="customer-8"), _inputs(2), pd.DataFrame({"prediction": ["a", "b"]}))
        target.record(_meta("r-3", key="customer-8"), _inputs(1), pd.DataFrame({"prediction": ["a"]}))
        target.record(_meta("r-shadow", deployment="churn-shadow", version="v1.2.0", key="customer-9"), _inputs(2),
                      pd.DataFrame({"prediction": ["a", "b"]}))  # fmt: skip
        target.record(_meta("r-big", key="customer-1"), _inputs(1001), pd.DataFrame({"prediction": ["a"] * 1001}))
    for labels, on in LABEL_CALLS:
        assert log.add_labels("churn", "prod", labels, on) == duck.add_labels("churn", "prod", labels, on)
    for target in (log, duck):
        with pytest.raises(InvalidInput, match=r"Key 'customer-1' matches 1,001 logged rows"):
            target.add_labels("churn", "prod", _labels(key=["customer-8", "customer-1"], label=["x", "y"]), "key")
    every = _labels(key=["customer-1"], label=["z"])
    assert log.add_labels("churn", "prod", every, "key", all_rows=True) == duck.add_labels(
        "churn", "prod", every, "key", all_rows=True
    )
    with store.connect(autocommit=True) as con:
        mine = con.execute('SELECT request_id, "row", label, joined_on, "key" FROM labels ORDER BY seq').fetchall()
    theirs = duck.query('SELECT request_id, "row", label, joined_on, "key" FROM labels ORDER BY seq').astype(object)
    assert len(mine) == 1008 and mine == list(theirs.where(theirs.notna(), None).itertuples(index=False, name=None))
    duck.close()


def test_a_rows_latest_label_is_found_by_an_index_not_a_scan_of_every_models_labels(store: Store) -> None:
    with store.connect(autocommit=True) as con:
        con.execute("SET enable_seqscan = off")  # an empty table: ask what the planner could use
        plan = con.execute(
            'EXPLAIN SELECT label FROM labels WHERE name = %s AND env = %s AND request_id = %s AND "row" = 0 '
            "ORDER BY seq DESC LIMIT 1",
            ("churn", "prod", "r-1"),
        ).fetchall()
    assert "labels_name_env_request_id_row" in " ".join(str(line[0]) for line in plan)


def test_a_backfill_reads_each_quarantined_row_once_and_skips_a_batch_it_cannot_rescore(store: Store) -> None:
    from rollbackkit.serving.postgres.log import PostgresLog

    log = PostgresLog(store, flush_interval=0.05, replica="r1")
    for k in range(30):  # 120 rows of a bad version, two input signatures
        inputs = _inputs(4) if k % 3 else _inputs(4)[["tenure", "plan"]]
        log.record(_meta(f"q-{k:02d}", version="v2"), inputs, pd.DataFrame({"prediction": ["yes"] * 4}))
    assert log.flush() and log.quarantine("churn", "prod", "v2") == 120
    read, page = [0], log._frame

    def counted(sql: str, params: Any = ()) -> pd.DataFrame:
        frame = page(sql, params)
        read[0] += len(frame)
        return frame

    log._frame = counted  # type: ignore[method-assign]

    def rescore(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
        if rescore.calls == 1:  # type: ignore[attr-defined]
            rescore.calls += 1  # type: ignore[attr-defined]
            raise ValueError("this batch cannot be scored")
        rescore.calls += 1  # type: ignore[attr-defined]
        return pd.DataFrame({"prediction": ["no"] * len(inputs)}), "v1", "b-v1"

    rescore.calls = 0  # type: ignore[attr-defined]
    result = log.backfill("churn", "prod", "v2", rescore, batch=16)
    assert (result["rescored"], result["failed"]) == (104, 16)
    assert read[0] <= 120 + 2 * 16  # each row once, plus the rows of the other signature a page held back
    assert _count(store, "SELECT count(*) FROM predictions WHERE status = 'quarantined'") == 16
    assert _count(store, "SELECT count(*) FROM predictions WHERE status = 'backfill'") == 104
    log.close(wait=5)


def test_a_prune_drops_the_ledger_of_batches_as_old_as_the_rows(store: Store, log: Log) -> None:
    from rollbackkit.serving.postgres.log import PostgresLog

    for request_id in ("old", "new"):
        log.record(_meta(request_id), _inputs(2), pd.DataFrame({"prediction": ["yes", "no"]}))
        assert log.flush()
    with store.connect(autocommit=True) as admin:  # the first batch was written ten days ago
        admin.execute("UPDATE predictions SET time = time - interval '10 days' WHERE request_id = 'old'")
        admin.execute(
            "UPDATE log_batches SET written = written - interval '10 days' WHERE batch_id = "
            "(SELECT batch_id FROM predictions WHERE request_id = 'old' LIMIT 1)"
        )
    admin_log = PostgresLog(store, replica="r2")
    assert admin_log.prune(days=1) == 2
    assert _count(store, "SELECT count(*) FROM log_batches") == 1
    assert _count(store, "SELECT count(*) FROM log_inputs") == 1
    admin_log.close(wait=5)


def test_a_request_after_close_is_counted_and_times_come_back_as_duckdb_gives_them(
    store: Store, tmp_path: Path
) -> None:
    log = Log(store, flush_interval=0.05, replica="r1")
    log.start()
    meta = {**_meta("ns"), "time": pd.Timestamp("2026-01-01 00:00:00.9999996", tz="UTC")}
    log.record(meta, _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert log.close(wait=5) is None
    log.record(_meta("late"), _inputs(3), pd.DataFrame({"prediction": ["yes"] * 3}))
    assert log.status()["dropped"] == 3
    with store.connect(autocommit=True) as con:
        stored = con.execute("SELECT time FROM predictions WHERE request_id = 'ns'").fetchone()[0]  # type: ignore[index]
    duck = PredictionLog(tmp_path / "log.duckdb")
    duck.record(meta, _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert stored == duck.window("churn", "prod")["time"].iloc[0]  # a nanosecond time rounded alike
    duck.close()


def test_a_query_cannot_change_the_log(store: Store, log: Log) -> None:
    from rollbackkit.serving.postgres.log import PostgresLog

    reader = PostgresLog(store, replica="r2")
    log.record(_meta("kept"), _inputs(1), pd.DataFrame({"prediction": ["yes"]}))
    assert log.flush()
    with pytest.raises(StoreError, match="read-only"):
        reader.query("UPDATE predictions SET status = 'gone' RETURNING request_id")
    assert _count(store, "SELECT count(*) FROM predictions WHERE status = 'ok'") == 1
    reader.close(wait=5)


def test_a_request_the_log_cannot_buffer_is_counted_unwritten_not_swallowed(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request path never fails because of the log, and a request lost there shows in /status."""
    from rollbackkit.serving.postgres import writer

    def broken(*_: Any) -> int:
        raise MemoryError("cannot size the rows")

    monkeypatch.setattr(writer, "held_bytes", broken)
    log.record(_meta("lost-1"), _inputs(4), pd.DataFrame({"prediction": ["yes"] * 4}))  # never raises
    status = log.status()
    assert status["unwritten"] == 1 and status["write_errors"] == 1
    assert "lost-1 not buffered: MemoryError: cannot size the rows" in status["last_write_error"]
