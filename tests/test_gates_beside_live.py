"""``gates check --env`` while a canary runs beside live: the watchdog's report, not a false pass.

An on-call engineer checks a canary before promoting it. The command reads the log the
server wrote and must judge the canary as the watchdog does: against live over the same
minutes. The README's ``agrees-with-live`` gate is for shadows; beside a canary no request is
scored by both versions, so it is skipped (not a rollout paused for ever).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.analysis.agreement import NOT_SHADOW
from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.log_operations import log_operation
from rollbackkit.serving.predlog.log import PredictionLog

from .conftest import new_repo, run_cli

GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "p99-vs-live", "kind": "latency", "quantile": "p99", "compare": "live", "max_ratio": 1.5},
        {"name": "errors-vs-live", "kind": "error_rate", "compare": "live", "max_increase": 0.05},
        {"name": "agrees-with-live", "kind": "agreement", "min": 0.9},
    ],
}


def _tumours(rows: int, seed: int) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    pick = np.random.default_rng(seed).integers(0, len(data.frame), rows)
    frame = data.frame[["mean radius", "mean texture", "mean area"]].iloc[pick].reset_index(drop=True)
    return frame.assign(target=np.asarray(data.target_names)[data.target.to_numpy()[pick]])


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, dict[str, Any]]:
    """v1.0.0 live, v1.1.0 (gates against live) a 50% canary beside it in prod and a shadow of
    every request in ``shadow``, 800 rows of traffic each; the project and each env's
    watchdog report."""
    from sklearn.linear_model import LogisticRegression

    repo = new_repo(tmp_path_factory.mktemp("beside-live") / "project")
    registry = Registry.init(repo)
    train = _tumours(600, seed=1)
    X = train.drop(columns="target")
    for version, c in (("v1.0.0", 1.0), ("v1.1.0", 0.1)):
        model = LogisticRegression(C=c, max_iter=2000).fit(X, train["target"])
        gates = GATES if version == "v1.1.0" else {"min_samples": 100, "gates": []}
        registry.register("tumour", model, train, target="target", version=version, gates=gates)
    reports = {}
    for env, beside in (("prod", {"canary": 50}), ("shadow", {"shadow": 100})):
        deploy(repo, "tumour@v1.0.0", env, reason="first release")
        log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
        try:
            environment = ServingEnvironment(repo, "tumour", env, log=log, bake_seconds=600.0)
            environment.start()
            environment.deploy("v1.1.0", reason="regularised", force=True, **beside)
            traffic = _tumours(800, seed=2).drop(columns="target")
            for i in range(0, len(traffic), 10):
                environment.predict(traffic.iloc[i : i + 10], key=f"user-{i}", request_id=uuid.uuid4().hex)
            assert environment.mirror.drain(120)
            environment.check_gates()
            assert environment.last_report is not None
            reports[env] = environment.last_report
            environment.stop()
        finally:
            log.close()
    return repo, reports


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {g["name"]: g["status"] for g in report["gates"]}


def test_gates_check_env_reports_what_the_watchdog_decided_for_a_canary(canary: tuple[Path, dict]) -> None:
    repo, reports = canary
    watchdog = reports["prod"]
    done = run_cli("gates", "check", "tumour@v1.1.0", "--env", "prod", "--json", cwd=repo)
    assert done.returncode in (0, 3), done.stderr
    checked = json.loads(done.stdout)

    assert checked["decision"] == watchdog["decision"]
    assert _statuses(checked) == _statuses(watchdog)
    p99 = next(g for g in checked["gates"] if g["name"] == "p99-vs-live")
    assert p99["status"] != "skipped" and p99["evidence"]["n_live"] > 100  # compared with live's rows
    theirs = next(g for g in watchdog["gates"] if g["name"] == "p99-vs-live")
    assert (p99["evidence"]["n"], p99["evidence"]["n_live"]) == (theirs["evidence"]["n"], theirs["evidence"]["n_live"])

    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:  # a server's POST /admin/gates: the same report from its open log
        served = log_operation(Registry(repo), log, "gates", "tumour", "prod", "v1.1.0")
    finally:
        log.close()
    assert (served["decision"], _statuses(served)) == (watchdog["decision"], _statuses(watchdog))


def test_an_agreement_gate_beside_a_canary_is_skipped_not_waiting_for_ever(canary: tuple[Path, dict]) -> None:
    watchdog = canary[1]["prod"]
    agreement = next(g for g in watchdog["gates"] if g["name"] == "agrees-with-live")
    assert agreement["status"] == "skipped"
    assert agreement["evidence"]["reason"] == NOT_SHADOW == "not a shadow: no request was scored by both versions"
    assert "agrees-with-live" not in (watchdog.get("summary") or "")


def test_gates_check_env_pairs_a_shadow_with_live_request_by_request(canary: tuple[Path, dict]) -> None:
    repo, reports = canary
    done = run_cli("gates", "check", "tumour@v1.1.0", "--env", "shadow", "--json", cwd=repo)
    assert done.returncode in (0, 3), done.stderr
    checked = json.loads(done.stdout)
    assert (checked["decision"], _statuses(checked)) == (reports["shadow"]["decision"], _statuses(reports["shadow"]))
    agreement = next(g for g in checked["gates"] if g["name"] == "agrees-with-live")
    assert agreement["status"] in ("pass", "fail") and agreement["evidence"]["n_paired"] == 800
