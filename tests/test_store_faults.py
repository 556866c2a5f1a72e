"""The store's log when another replica is stuck mid-transaction: nobody waits forever, and the guards hold.

A replica frozen with its batch's transaction open (a paused pod, a half-open connection) holds
its locks. The others' writers retry the same batch, a flush returns within its timeout, a
rollback's quarantine fails in one line instead of hanging. And a batch in flight while another
replica promotes or quarantines its version lands where the operation says: the tests hold a
batch's transaction open by hand, so removing either guard fails them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from rollbackkit.errors import StoreError, StoreUnavailable
from rollbackkit.serving.postgres import rows
from rollbackkit.serving.postgres import store as store_module
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import Store, open_store
from rollbackkit.serving.predlog.batches import Pending


def _meta(request_id: str, *, deployment: str = "churn-live", version: str = "v1.0.0") -> dict[str, Any]:
    return {
        "request_id": request_id, "time": datetime.now(UTC), "env": "prod", "name": "churn", "version": version,
        "bundle_id": "b-" + version, "slot": "blue", "deployment": deployment, "latency_ms": 1.5, "error": None,
        "primary": "prediction", "key": None,
    }  # fmt: skip


def _request(request_id: str, **meta: str) -> Pending:
    inputs = pd.DataFrame({"tenure": np.array([0.5, 2.25]), "plan": pd.array(["pro", None], dtype="string")})
    return Pending(_meta(request_id, **meta), inputs, pd.DataFrame({"prediction": ["yes", "no"]}))


def _count(store: Store, sql: str) -> int:
    with store.connect(autocommit=True) as con:
        return int(con.execute(sql).fetchone()[0])  # type: ignore[index]


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    for settings in (store_module.LOG_SESSION, store_module.LOG_READS):  # 5 s in production
        monkeypatch.setitem(settings, "lock_timeout", "400ms")
    return open_store(store_url)


@pytest.fixture
def replicas(store: Store) -> Iterator[tuple[PostgresLog, PostgresLog]]:
    """Two replicas' logs on one store: r1 writes, r2 is where the operator's command landed."""
    r1 = PostgresLog(store, flush_interval=0.05, replica="r1")
    r2 = PostgresLog(store, flush_interval=0.05, replica="r2")
    r1.start()
    yield r1, r2
    r1.close(wait=2)
    r2.close(wait=2)


def _in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _open_batch(store: Store, *items: Pending) -> psycopg.Connection[Any]:
    """A third replica's batch written and left uncommitted (its transaction open)."""
    con = store.connect(purpose="log writer")
    batch_id = uuid.uuid4().hex
    rows.write(con, batch_id, 2 * len(items), "r3", rows.parts(list(items), batch_id, "r3"))
    return con


def test_a_writer_blocked_by_a_stuck_lock_retries_its_batch_and_flush_returns_in_time(
    store: Store, replicas: tuple[PostgresLog, PostgresLog]
) -> None:
    r1, _ = replicas
    r1.record(_meta("warm"), _request("warm").inputs, _request("warm").outputs)
    assert r1.flush(5)
    stuck = store.connect(purpose="stuck quarantine")  # as a quarantine frozen while holding its lock
    stuck.execute("LOCK TABLE log_quarantine IN EXCLUSIVE MODE")
    try:
        r1.record(_meta("blocked"), _request("blocked").inputs, _request("blocked").outputs)
        started = time.monotonic()
        assert not r1.flush(timeout=1.0)
        assert time.monotonic() - started < 1.5
        status = r1.status()
        assert "lock timeout" in status["last_write_error"] and status["buffered"] == 2
    finally:
        stuck.close()
    assert r1.flush(timeout=5)
    assert _count(store, "SELECT count(*) FROM predictions WHERE request_id = 'blocked'") == 2
    assert _count(store, "SELECT count(*) FROM log_batches") == 2  # the same batch, retried, written once


def test_a_rollbacks_quarantine_blocked_by_a_stuck_batch_fails_in_one_line(
    store: Store, replicas: tuple[PostgresLog, PostgresLog]
) -> None:
    _, r2 = replicas
    frozen = _open_batch(store, _request("in-flight", version="v1.1.0"))
    try:
        thread, result = _in_thread(lambda: r2.quarantine("churn", "prod", "v1.1.0"))
        thread.join(5)
        assert not thread.is_alive()
    finally:
        frozen.close()
    error = result["error"]
    assert isinstance(error, StoreError) and "\n" not in error.message
    assert error.message.startswith("The rows churn v1.1.0 wrote in prod were not quarantined")
    assert "Traffic has moved already" in error.hint


def test_a_quarantine_waits_for_a_batch_in_flight_and_catches_its_rows(
    store: Store, replicas: tuple[PostgresLog, PostgresLog]
) -> None:
    _, r2 = replicas
    frozen = _open_batch(store, _request("late-1", version="v1.1.0"), _request("late-2", version="v1.1.0"))
    thread, result = _in_thread(lambda: r2.quarantine("churn", "prod", "v1.1.0"))
    time.sleep(0.2)
    assert thread.is_alive()  # waits for the batch that read the quarantines before it
    frozen.commit()
    frozen.close()
    thread.join(5)
    assert result == {"value": 4}
    assert _count(store, "SELECT count(*) FROM predictions WHERE status = 'quarantined'") == 4


def test_a_promote_waits_for_a_batch_in_flight_and_moves_its_staged_rows(
    store: Store, replicas: tuple[PostgresLog, PostgresLog]
) -> None:
    _, r2 = replicas
    r2.set_stage("churn-canary", "churn", "prod", "v1.1.0", "staging")
    frozen = _open_batch(store, _request("staged", deployment="churn-canary", version="v1.1.0"))
    thread, result = _in_thread(lambda: r2.promote("churn-canary"))
    time.sleep(0.2)
    assert thread.is_alive()  # waits for the batch that read the stage before it
    frozen.commit()
    frozen.close()
    thread.join(5)
    assert result == {"value": 2}
    assert _count(store, "SELECT count(*) FROM predictions_staging") == 0
    assert _count(store, "SELECT count(*) FROM predictions WHERE request_id = 'staged'") == 2


@pytest.mark.parametrize("store_answers", [True, False], ids=["connects", "unreachable"])
def test_a_writer_still_connecting_when_close_gives_up_ends_quietly_and_closes_its_own_connection(
    store: Store, store_answers: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The shutdown that aborted a replica (SIGABRT): its writer thread, still in a connect when close()
    # gave up, logged and held libpq after serve() returned, while Python finalized.
    opened: list[psycopg.Connection[Any]] = []
    real_connect = Store.connect

    def slow_connect(self: Store, **options: Any) -> psycopg.Connection[Any]:
        if options.get("purpose") != "log writer":
            return real_connect(self, **options)
        time.sleep(0.8)  # a store coming back from a restart
        if not store_answers:
            raise StoreUnavailable("Cannot reach the store: connection refused.", "Start it.")
        opened.append(real_connect(self, **options))
        return opened[-1]

    monkeypatch.setattr(Store, "connect", slow_connect)
    log = PostgresLog(store, flush_interval=0.05, replica="r1")
    log.start()
    last = _request("last")
    log.record(last.meta, last.inputs, last.outputs)
    time.sleep(0.2)  # the writer is inside its connect
    assert log.close(wait=0.2) == 1
    caplog.clear()
    writer = log._writer
    assert writer is not None
    writer.join(5)
    assert not writer.is_alive()
    assert [r.getMessage() for r in caplog.records] == []  # nothing logged once closed
    assert all(con.closed for con in opened)
