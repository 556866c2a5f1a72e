"""Reading the prediction log while a server runs: the server of one environment holds the
project's one DuckDB file, so a notebook reading another environment (staging, no server of
its own) reads through it, never into DuckDB's lock error; and a server that stops answering
(SIGSTOP) costs a notebook one line within seconds, never minutes. An iris project with string
classes: v1.0.0 serving prod, v1.1.0 deployed to staging.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

import rollbackkit
from rollbackkit.errors import InvalidInput, RollbackkitError, ServerTimeout
from rollbackkit.serving.client import READ_TIMEOUT
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog

from .servers import TOKEN, running_server
from .story import Case, build_project, widened
from .test_matrix import pipeline

CASE = Case("reads-beside-iris", "iris", "names")


def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> object:
    return pipeline(CASE, list(X.columns[:4]), rounds).fit(X, y)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """v1.0.0 on prod, v1.1.0 on staging with 60 rows logged there (by an in-process server, now stopped)."""
    repo, _ = build_project(tmp_path_factory.mktemp("reads-beside"), fit, CASE, rounds=(5, 5))
    rollbackkit.deploy(repo, "model@v1.1.0", "staging")
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    staging = ServingEnvironment(repo, "model", "staging", log=log, bake_seconds=600.0)
    try:
        staging.start()
        inputs = widened(CASE, 60, seed=3).drop(columns=["target"])
        for i in range(0, 60, 20):
            staging.predict(inputs.iloc[i : i + 20], request_id=uuid.uuid4().hex)
    finally:
        staging.stop()
        log.close()
    return repo


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)  # the notebook's, as the servers'


def _one_line(exc: RollbackkitError) -> str:
    said = f"{exc.message} {exc.hint}"
    assert "\n" not in said and "duckdb.org" not in said and "lock" not in said.lower(), said
    return said


def test_staging_is_read_through_the_prod_server_and_a_stopped_one_is_one_line_in_seconds(staged: Path) -> None:
    with running_server(staged, "model", "prod", watchdog=60.0) as server:
        window = rollbackkit.logged_window(staged, "model", "staging", "v1.1.0")
        assert len(window) == 60  # the rows staging logged, read by the server of prod
        series = rollbackkit.drift_over_time(staged, "model", "staging")
        assert int(series.n.sum() + series.missing.sum()) == 60
        history = rollbackkit.gate_history(staged, "model", "staging")
        assert history.where == server.url and history.evaluations == ()  # no watchdog ran in staging
        with pytest.raises(InvalidInput) as nothing:  # prod: no traffic yet, one line
            rollbackkit.drift_over_time(staged, "model", "prod")
        assert "Nothing was logged for model in prod" in _one_line(nothing.value)
        assert rollbackkit.logged_window(staged, "model", "staging", "v9.9.9").empty
        with pytest.raises(RollbackkitError) as written:  # a write of staging's rows is not prod's server's to make
            rollbackkit.backfill(staged, "model", "staging", "v1.0.0")
        assert "serves model in prod; it backfills only their rows" in _one_line(written.value)

        assert READ_TIMEOUT == (2.0, 10.0)
        pid = server.process.pid
        os.kill(pid, signal.SIGSTOP)  # stopped (or overloaded): it takes connections, answers nothing
        try:
            for read in (
                lambda: rollbackkit.drift_over_time(staged, "model", "staging"),  # through prod's server
                lambda: rollbackkit.gate_history(staged, "model", "prod"),
            ):
                started = time.monotonic()
                with pytest.raises(ServerTimeout) as hung:
                    read()
                assert time.monotonic() - started < 15
                said = _one_line(hung.value)
                assert f"The server for model in prod (pid {pid}, {server.url}) did not answer in 10 s" in said
                assert f"kill -CONT {pid}" in said and "--server" not in said
        finally:
            os.kill(pid, signal.SIGCONT)
