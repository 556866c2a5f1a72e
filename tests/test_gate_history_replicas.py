"""Gates over time behind a replica pair on one PostgreSQL: the leader judges and writes, both read.

Two served environments of one project share a real PostgreSQL store (tests/postgres.py), each
answering HTTP on 127.0.0.1 as a ``serve --replica`` process would. Traffic whose customers all
look like churners breaches prediction drift; the leader's watchdog records that evaluation in
``rollbackkit.gate_evaluations``, and ``rollbackkit.gate_history`` through either replica shows
it. The follower never evaluates, so it never writes a row.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import uvicorn

import rollbackkit
from rollbackkit.serving.app import create_app
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store

from .conftest import live_records
from .replicas import project_token
from .story import wait


def _serve_http(env: Any, token: str, servers: list[uvicorn.Server]) -> str:
    """``env``'s admin API on a free port of 127.0.0.1, from a thread (stopped by the caller)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(env, token), port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    servers.append(server)
    wait(lambda: server.started, 10, "the replica's HTTP server starts", every=0.02)
    return f"http://127.0.0.1:{port}"


def test_a_breach_the_leader_judges_is_in_the_shared_history_through_either_replica(
    served: Path, store_url: str
) -> None:
    from rollbackkit.serving.replicated import ReplicaEnvironment

    store, token = open_store(store_url), project_token(served)
    logs = {who: PostgresLog(open_store(store_url), flush_interval=0.05, replica=who) for who in ("a", "b")}
    envs = {
        who: ReplicaEnvironment(served, "churn", "prod", store=store, replica=who, log=log) for who, log in logs.items()
    }
    writes = dict.fromkeys(envs, 0)
    servers: list[uvicorn.Server] = []
    for who, env in envs.items():
        env.start()
        record = logs[who].record_gates

        def counted(*args: Any, _record: Any = record, _who: str = who) -> None:
            writes[_who] += 1
            _record(*args)

        logs[who].record_gates = counted  # type: ignore[method-assign,assignment]
    a, b = envs["a"], envs["b"]
    try:
        urls = {who: _serve_http(env, token, servers) for who, env in envs.items()}
        frame = pd.DataFrame(live_records(360, seed=11))  # every customer a churner: predictions drift
        frame = frame.assign(contract="month-to-month", tenure_months=1, support_calls=9, monthly_charges=140.0)
        a.predict(frame.iloc[:240].reset_index(drop=True))  # the leader judges the traffic it served
        b.predict(frame.iloc[240:].reset_index(drop=True))

        def breached() -> bool:
            a.check_gates()
            report = a.last_report or {}
            return any(
                g.get("name") == "prediction-drift" and g.get("status") == "fail" for g in report.get("gates", [])
            )

        wait(breached, 30, "the leader judges the drifted window a breach", every=0.2)
        for _ in range(3):
            assert b.check_gates() is None  # the follower never judges
        assert a.watchdog.history.flush(10.0)

        seen = {who: rollbackkit.gate_history(served, "churn", "prod", server=url) for who, url in urls.items()}
        assert seen["a"].evaluations == seen["b"].evaluations and seen["a"].where != seen["b"].where
        failed = [e for e in seen["b"].evaluations if any(g.status == "fail" for g in e.gates)]
        assert failed and failed[-1].version == "v1.0.0" and failed[-1].role == "live"
        drift = next(g for g in failed[-1].gates if g.name == "prediction-drift")
        assert drift.value is not None and drift.value > drift.threshold["max"] == 0.2
        assert writes["a"] >= 1 and writes["b"] == 0  # only the leader writes the history
    finally:
        for server in servers:
            server.should_exit = True
        for env in envs.values():
            env.stop()
            env.close()
        for log in logs.values():
            log.close()
