"""Side-effect isolation: a canary's rows stay in staging, a rollback quarantines them,
backfill corrects them with the restored version, and a kill -9 loses only the last batch
(of the server's hand-over to its writer process, and of the writer when it dies too).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.sinks import SqlSink

from .conftest import git, run_cli
from .servers import TOKEN, running_server

ROWS_PER_REQUEST = 1000


def _post_all(url: str, frames: list[pd.DataFrame], prefix: str) -> list[dict]:
    """Send each frame as one request (4 clients in parallel); return every response."""

    def send(i: int) -> dict:
        frame = frames[i]
        body = {"columns": list(frame.columns), "data": frame.to_numpy().tolist(), "key": f"{prefix}-{i}"}
        response = httpx.post(f"{url}/predict", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return {**response.json(), "index": i}

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(send, range(len(frames))))


def test_a_rolled_back_canary_never_reaches_production_and_is_backfilled(served: Path) -> None:
    sink_db = served.parent / "downstream.db"
    config = served / ".rollbackkit" / "config.yaml"
    config.write_text(config.read_text() + f"sinks:\n  - url: sqlite:///{sink_db}\n    table: churn_scores\n")
    git(served, "commit", "-qam", "mirror predictions to the downstream table")
    live = churn_frame(100_000, seed=41)[ALL_FEATURES]
    frames = [live.iloc[i : i + ROWS_PER_REQUEST] for i in range(0, len(live), ROWS_PER_REQUEST)]
    before, during, after = frames[:20], frames[20:80], frames[80:]

    with running_server(served, "churn", "prod", watchdog=3600) as server:
        responses = _post_all(server.url, before, "before")
        assert server.admin("deploy", {"version": "v1.1.0", "canary": 30}).status_code == 200
        canary = _post_all(server.url, during, "during")
        rollback = server.admin("rollback", {"reason": "tail segment degraded", "incident": "INC-42"})
        assert rollback.status_code == 200, rollback.text
        responses += canary + _post_all(server.url, after, "after")

        v2 = [r for r in canary if r["version"] == "v1.1.0"]
        assert 0 < len(v2) < len(canary)  # the canary really took part of the traffic
        v2_rows = {(r["request_id"], row) for r in v2 for row in range(ROWS_PER_REQUEST)}
        affected = run_cli(
            "affected",
            "churn",
            "--env",
            "prod",
            "--version",
            "v1.1.0",
            "--json",
            cwd=served,
            env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN},
        )
        assert affected.returncode == 0, affected.stderr
        listed = json.loads(affected.stdout)
        assert (listed["rows"], listed["quarantined"], listed["backfilled"]) == (len(v2_rows), len(v2_rows), 0)
        assert listed["tables"] == [{"table": "predictions_staging", "rows": len(v2_rows)}]
        first = run_cli(
            "backfill",
            "churn",
            "--env",
            "prod",
            "--version",
            "v1.1.0",
            "--json",
            cwd=served,
            env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN},
        )
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout) == {"rescored": len(v2_rows), "already_done": 0, "failed": 0}

    assert sum(len(r["predictions"]) for r in responses) == 100_000
    second = run_cli("backfill", "churn", "--env", "prod", "--version", "v1.1.0", "--json", cwd=served)
    assert json.loads(second.stdout) == {"rescored": 0, "already_done": len(v2_rows), "failed": 0}

    log = PredictionLog(served / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        assert log.verify_batches() == []
        assert log.query("SELECT count(*) AS n FROM predictions WHERE version = 'v1.1.0'")["n"][0] == 0
        production = log.production("churn")
        assert set(production["version"]) == {"v1.0.0"}
        assert len(production) == 100_000  # every request, v2's rows replaced by their v1 correction
        logged_v2 = log.query(
            "SELECT request_id, \"row\" FROM predictions_staging WHERE version = 'v1.1.0' AND status = 'backfilled'"
        )
        assert set(zip(logged_v2["request_id"], logged_v2["row"], strict=True)) == v2_rows
        corrected = log.query("SELECT replaces, outputs FROM predictions WHERE status = 'backfill' ORDER BY replaces")
        audit = log.query("SELECT count(*) AS n, min(new_version) AS v FROM backfill_audit")
    finally:
        log.close()
    assert (audit["n"][0], audit["v"][0]) == (len(v2_rows), "v1.0.0")

    # Every corrected row equals scoring the request's original inputs with v1 directly.
    v1 = Registry(served).load("churn@v1.0.0")
    sent = {r["request_id"]: during[r["index"]] for r in v2}
    originals = pd.concat([sent[key.split(":")[0]].iloc[[int(key.split(":")[1])]] for key in corrected["replaces"]])
    direct = v1.predict(originals[list(v1.schema.feature_names)])
    stored = pd.DataFrame([json.loads(o) for o in corrected["outputs"]])[list(direct.columns)]
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), direct.reset_index(drop=True), check_dtype=False)

    # The downstream SQLite table kept the same contract.
    sink = SqlSink(f"sqlite:///{sink_db}", "churn_scores")
    downstream = sink.read("production")
    assert len(downstream) == 100_000 and set(downstream["version"]) == {"v1.0.0"}
    assert set(sink.read("staging")["status"]) == {"backfilled"}


def _writer_of(server_pid: int) -> int:
    """The pid of the server's prediction-log writer process (its child)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    writers = [
        int(c)
        for c in children
        if b"rollbackkit.serving.predlog.process_child" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]
    assert len(writers) == 1, children
    return writers[0]


def _exits(pid: int, within_s: float) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("killed", "bound_s"),
    [
        ("server", 0.5),  # the writer commits what it was handed; only the last hand-over (0.05 s) can be lost
        ("server-and-writer", 1.3),  # + the writer's unflushed batch (0.5 s); slack for 2 busy cores
    ],
)
def test_kill_9_mid_write_loses_at_most_the_unflushed_batch(served: Path, killed: str, bound_s: float) -> None:
    live = churn_frame(4000, seed=43)[ALL_FEATURES]
    acked: list[tuple[str, float, int]] = []
    stop = threading.Event()

    with running_server(served, "churn", "prod", watchdog=3600) as server:
        writer = _writer_of(server.process.pid)

        def client(offset: int) -> None:
            i = offset
            while not stop.is_set() and i < 10_000:
                records = live.iloc[(i * 20) % 3980 : (i * 20) % 3980 + 20].to_dict(orient="records")
                try:
                    response = httpx.post(f"{server.url}/predict", json={"records": records}, timeout=10)
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    acked.append((response.json()["request_id"], time.time(), len(records)))
                i += 3

        clients = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acked) < 60 and time.monotonic() < deadline:  # writes well under way
            time.sleep(0.05)
        killed_at = time.time()
        for pid in [server.process.pid, writer] if killed == "server-and-writer" else [server.process.pid]:
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        stop.set()
        for thread in clients:
            thread.join(timeout=20)

    # Opens (waiting while an orphaned writer commits its last batch): not corrupted.
    log = PredictionLog(served / ".rollbackkit" / "local" / "predictions.duckdb", lock_wait=30)
    try:
        assert log.verify_batches() == []  # no half-written batch
        stored = log.query("SELECT request_id, count(*) AS n FROM predictions GROUP BY request_id")
    finally:
        log.close()
    assert _exits(writer, within_s=15)  # an orphaned writer stops by itself once its batch is in
    rows = dict(zip(stored["request_id"], stored["n"], strict=True))
    assert len(acked) >= 60
    assert all(rows.get(rid, n) == n for rid, _, n in acked)  # a request is all in or all out
    lost = [(rid, t) for rid, t, _ in acked if rid not in rows]
    assert [rid for rid, t in lost if t < killed_at - bound_s] == []
    assert sum(n for rid, _, n in acked if rid not in rows) <= 20_000  # at most one batch_rows


def test_a_dead_writer_is_replaced_and_serving_never_stops(served: Path) -> None:
    records = churn_frame(50, seed=44)[ALL_FEATURES].to_dict(orient="records")
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        os.kill(_writer_of(server.process.pid), signal.SIGKILL)
        during = [server.predict(records[i : i + 2]) for i in range(0, 20, 2)]
        assert [r.status_code for r in during] == [200] * 10  # serving does not notice
        deadline = time.monotonic() + 30
        while server.status()["log"]["restarts"] < 1 and time.monotonic() < deadline:
            server.predict(records[:1])
            time.sleep(0.2)
        log_status = server.status()["log"]
        assert log_status["restarts"] == 1 and log_status["alive"]
        assert (log_status["write_errors"], log_status["unwritten"]) == (0, 0)  # the new writer's counts
        after = [server.predict(records[i : i + 2]).json()["request_id"] for i in range(20, 40, 2)]
    log = PredictionLog(served / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        stored = set(log.query("SELECT DISTINCT request_id FROM predictions")["request_id"])
        assert log.verify_batches() == []
    finally:
        log.close()
    assert set(after) <= stored  # the new writer logs everything after it started
    lost = [r.json()["request_id"] for r in during if r.json()["request_id"] not in stored]
    assert len(lost) <= log_status["dropped"]  # nothing vanishes uncounted


def test_bake_time_promotes_a_passing_deploy_and_windows_survive_a_restart(served: Path) -> None:
    path = served / ".rollbackkit" / "local" / "predictions.duckdb"
    live = churn_frame(600, seed=44)[ALL_FEATURES]
    log = PredictionLog(path)
    environment = ServingEnvironment(served, "churn", "prod", log=log, bake_seconds=0)
    environment.start()
    environment.deploy("v1.1.0", reason="full deploy, baking")
    for i in range(0, 600, 50):
        environment.predict(live.iloc[i : i + 50], key=str(i))
    slot = environment.router.state.slot(environment.router.state.live)
    assert slot is not None and log.stage_of(slot.deployment) == "staging"
    assert len(log.production("churn").query("version == 'v1.1.0'")) == 0  # not before its gates passed
    report = environment.check_gates()
    assert report is None and environment.last_report["decision"] == "pass"
    assert log.stage_of(slot.deployment) == "production"
    assert len(log.production("churn").query("version == 'v1.1.0'")) == 600
    window = environment.window(slot)
    log.close()

    restarted = PredictionLog(path)
    try:
        again = ServingEnvironment(served, "churn", "prod", log=restarted)
        again.start()
        slot = again.router.state.slot(again.router.state.live)
        assert slot is not None
        pd.testing.assert_frame_equal(again.window(slot), window)  # the gate window outlived the process
        assert {"prediction", "latency_ms", *ALL_FEATURES} <= set(window.columns)
    finally:
        restarted.close()


def _record(log: PredictionLog, i: int, version: str = "v1.0.0", deployment: str = "m#prod#1") -> None:
    """Queue one two-row request of a tiny model ``m``."""
    from datetime import UTC, datetime

    frame = pd.DataFrame({"x": [float(i), i + 0.5], "y": ["a", "b"]})
    meta = {
        "request_id": f"{version}-r{i}",
        "time": datetime.now(UTC),
        "env": "prod",
        "name": "m",
        "version": version,
        "bundle_id": "sha256:x",
        "slot": "blue",
        "deployment": deployment,
        "latency_ms": 1.0,
        "error": None,
        "primary": "score",
    }
    log.record(meta, frame, pd.DataFrame({"score": frame["x"] / 10}))


def test_a_sink_that_missed_batches_is_caught_up_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    log = PredictionLog(path)
    log.set_stage("m#prod#1", "m", "prod", "v1.0.0", "production")
    for i in range(30):
        _record(log, i)
        if i % 10 == 9:
            log.flush()  # three batches committed while no sink was configured (an outage)
    log.close()

    sink = SqlSink(f"sqlite:///{tmp_path / 'down.db'}", "scores")
    for _ in range(2):  # a second start replays nothing
        caught_up = PredictionLog(path, sinks=[sink])
        caught_up.start()
        caught_up.close()
    production = sink.read("production")
    assert len(production) == 60 and production["request_id"].nunique() == 30
    assert sorted(production["primary_output"])[:3] == [0.0, 0.05, 0.1]


def test_prune_never_drops_rows_awaiting_backfill(tmp_path: Path) -> None:
    from rollbackkit.errors import InvalidInput

    log = PredictionLog(tmp_path / "log.duckdb")
    try:
        log.set_stage("m#prod#2", "m", "prod", "v2.0.0", "staging")
        for i in range(5):
            _record(log, i)
            _record(log, i, "v2.0.0", "m#prod#2")
        assert log.quarantine("m", "prod", "v2.0.0") == 10
        assert log.prune(0) == 10  # the healthy rows are old enough to go
        left = log.query('SELECT status, inputs_table, request_id, "row" FROM predictions_staging')
        assert len(left) == 10 and set(left["status"]) == {"quarantined"}
        assert log.inputs(left)["x"].tolist()[:2] == [0.0, 0.5]  # their inputs stay: a backfill is still possible
        with pytest.raises(InvalidInput, match="days"):
            log.prune(-1)
    finally:
        log.close()


def test_a_read_or_quarantine_waits_for_the_batch_the_writer_already_took(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.duckdb", flush_interval=0.01)
    log.start()  # the writer thread takes batches while we keep recording
    try:
        log.set_stage("m#prod#2", "m", "prod", "v2.0.0", "production")
        for i in range(3000):
            _record(log, i, "v2.0.0", "m#prod#2")
        assert log.quarantine("m", "prod", "v2.0.0") == 6000  # none still in flight, none left "ok"
        assert len(log.production("m")) == 0
    finally:
        log.close()


def test_bad_sink_config_is_one_clear_error(served: Path) -> None:
    config = served / ".rollbackkit" / "config.yaml"
    config.write_text(config.read_text() + "sinks:\n  - table: 'scores; DROP TABLE x'\n    url: sqlite://\n")
    result = run_cli("serve", "churn", "--env", "prod", "--port", "0", cwd=served)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Invalid sink table name" in result.stderr


def test_inputs_keep_their_types_and_equal_inputs_hash_alike(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    log = PredictionLog(tmp_path / "log.duckdb")
    try:
        meta = {"time": datetime.now(UTC), "env": "prod", "name": "m", "version": "v1.0.0", "bundle_id": "b"}
        meta |= {"slot": "blue", "deployment": "m#prod#1", "latency_ms": 1.0, "error": None, "primary": "score"}
        exact = pd.DataFrame({"x": [0.1 + 0.2, 1e-300, -0.0], "n": [2**62, -1, 0], "when": pd.Timestamp("2026-11-26")})
        mixed = pd.DataFrame({"x": [0.1 + 0.2, 1e-300, -0.0], "code": [7, "7", None]})  # Arrow cannot type it
        for i, frame in enumerate((exact, exact, mixed)):
            log.record({**meta, "request_id": f"r{i}"}, frame, pd.DataFrame({"score": frame["x"]}))
        log.flush()
        rows = log.query('SELECT request_id, "row", inputs_table, input_hash FROM predictions ORDER BY 1, 2')

        stored = log.inputs(rows[rows["request_id"] == "r0"])
        pd.testing.assert_frame_equal(stored, exact, check_dtype=False)  # bit for bit, 64-bit ints whole
        assert stored["x"].tolist() == exact["x"].tolist() and stored["n"].dtype == "int64"
        code = log.inputs(rows[rows["request_id"] == "r2"])["code"]
        assert code.tolist()[:2] == ["7", "7"] and code.isna().tolist() == [False, False, True]
        hashes = rows.groupby("request_id")["input_hash"].apply(list)
        assert hashes["r0"] == hashes["r1"] and len(set(hashes["r0"])) == 3  # equal inputs, equal hash
    finally:
        log.close()


def test_the_writer_outlives_a_batch_it_cannot_write(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.duckdb", flush_interval=0.02)
    log.set_stage("m#prod#1", "m", "prod", "v1.0.0", "production")
    log.start()
    try:
        _record(log, 0)
        time.sleep(0.3)  # committed on its own
        bad = pd.DataFrame({"x": [1 + 2j]})  # neither Arrow nor DuckDB stores complex numbers
        meta = {"request_id": "bad", "time": pd.Timestamp.now(tz="UTC"), "env": "prod", "name": "m"}
        meta |= {"version": "v1.0.0", "bundle_id": "b", "slot": "blue", "deployment": "m#prod#1", "primary": "score"}
        log.record(meta, bad, pd.DataFrame({"score": [0.5]}))
        deadline = time.monotonic() + 10
        while not log.write_errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.write_errors and "complex" in log.write_errors[0]
        _record(log, 1)  # the writer thread is still there
        deadline = time.monotonic() + 10
        while log.query("SELECT count(*) AS n FROM predictions")["n"][0] < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        stored = log.query("SELECT DISTINCT request_id FROM predictions ORDER BY 1")["request_id"].tolist()
        assert stored == ["v1.0.0-r0", "v1.0.0-r1"] and log.verify_batches() == []
    finally:
        log.close()


def test_backfilling_the_version_now_serving_is_refused_in_one_line(logged: Path) -> None:
    """logged: v1.1.0 was rolled back, v1.0.0 serves. Re-scoring v1.0.0's rows with itself means nothing."""
    refused = run_cli("backfill", "churn", "--env", "prod", "--version", "v1.0.0", cwd=logged)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") <= 2 and "serves prod now" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_backfill_batch_that_cannot_be_rescored_says_why(logged: Path) -> None:
    log = PredictionLog(logged / ".rollbackkit" / "local" / "predictions.duckdb")
    try:

        def broken(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
            raise ValueError("the restored model cannot read column 'tenure'")

        result = log.backfill("churn", "prod", "v1.1.0", broken)
    finally:
        log.close()
    assert result["rescored"] == 0 and result["failed"] > 0
    assert any("cannot read column 'tenure'" in reason for reason in result["errors"]), result


def test_a_log_held_by_another_environment_s_server_answers_through_that_server(served: Path) -> None:
    """One process writes a project's log: a read for an environment with no server of its own goes
    through the server holding it (staging's rows while prod is served), never DuckDB's lock error."""
    second = run_cli("deploy", "churn@v1.0.0", "--env", "staging", "--reason", "a second environment", cwd=served)
    assert second.returncode == 0, second.stderr  # staging is a known environment, with no server of its own
    with running_server(served, "churn", "prod"):
        read = run_cli(
            "affected", "churn", "--env", "staging", "--version", "v1.0.0", cwd=served,
            env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN},
        )  # fmt: skip
        refused = run_cli("affected", "churn", "--env", "staging", "--version", "v1.0.0", cwd=served)
    assert read.returncode == 0, read.stderr
    assert "lock" not in read.stderr.lower() and "Traceback" not in read.stdout + read.stderr
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1  # no token: one line, what to set
    assert "ROLLBACKKIT_ADMIN_TOKEN" in refused.stderr and "Traceback" not in refused.stderr
