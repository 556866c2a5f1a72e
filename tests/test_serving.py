"""Blue-green serving: the router, assignment history, the HTTP server and its watchdog."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.errors import IncompatibleInput, RoutingError
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal
from rollbackkit.serving.router import Router

from .conftest import BIN, git, live_records, run_cli, run_tool
from .servers import running_server


def test_the_router_shifts_between_warm_slots_without_loading(served: Path) -> None:
    registry = Registry(served)
    v1, v2 = registry.load("churn@v1.0.0"), registry.load("churn@v1.1.0")
    live = pd.DataFrame(live_records(50, seed=1))
    router = Router()
    router.deploy(v1)
    router.deploy(v2)
    state = router.state
    assert (state.slot(state.live).bundle, state.standby.bundle) == (v2, v1)
    assert router.predict(live).version == "v1.1.0"
    standby_slot = state.standby
    after = router.rollback()
    assert after.slot(after.live) is standby_slot  # the same warm object: nothing was loaded
    assert router.predict(live).version == "v1.0.0"  # v1 adapts the 52 columns (drops 5)

    router.deploy(v2, canary_percent=10)
    sides = {f"user-{i}": router.predict(live.head(1), key=f"user-{i}").version for i in range(400)}
    assert all(router.predict(live.head(1), key=k).version == v for k, v in list(sides.items())[:200])  # sticky
    share = sum(v == "v1.1.0" for v in sides.values()) / len(sides)
    assert 0.07 < share < 0.13
    with pytest.raises(RoutingError, match="canary is running"):
        router.deploy(v1)
    router.rollback()
    assert {router.predict(live.head(1), key=k).version for k in sides} == {"v1.0.0"}

    with pytest.raises(IncompatibleInput) as missing:
        router.predict(live.drop(columns=["tenure_months"]))
    assert missing.value.columns == ["tenure_months"]  # type: ignore[attr-defined]


def test_deploy_and_rollback_in_the_same_second_stay_ordered_for_us_and_gto(served: Path) -> None:
    registry = Registry(served)
    deployments = Deployments(registry)
    v1, v2 = registry.resolve("churn@v1.0.0"), registry.resolve("churn@v1.1.0")
    deployments.assign(v2, "prod", "deploy", reason="new model")
    deployments.assign(v1, "prod", "rollback", reason="bad tail", incident="INC-7")
    history = deployments.history("churn", "prod")
    assert [(a.version, a.action) for a in history] == [
        ("v1.0.0", "deploy"),
        ("v1.1.0", "deploy"),
        ("v1.0.0", "rollback"),
    ]
    assert len({a.timestamp for a in history}) == 3  # strictly increasing tagger times
    assert registry.resolve("churn#prod").version == "v1.0.0"
    assert deployments.state("churn", "prod").last_rolled_back_from == ("v1.1.0",)
    gto = run_tool("gto", "show", "--json", cwd=served)
    assert gto.returncode == 0, gto.stderr
    assert json.loads(gto.stdout)["churn"]["stage"]["prod"] == "v1.0.0"
    cli = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=served).stdout)
    assert cli["assignments"][-1] | {"time": None} == history[-1].to_dict() | {"time": None}
    assert set(cli) == {"name", "env", "assignments"}


def test_admin_calls_need_the_token_and_change_nothing_without_it(served: Path) -> None:
    with running_server(served, "churn", "prod") as server:
        before = server.status()
        assert server.admin("deploy", {"version": "v1.1.0"}, token=None).status_code == 401
        assert server.admin("deploy", {"version": "v1.1.0"}, token="wrong").status_code == 403
        assert server.admin("rollback", {"reason": "x"}, token="wrong").status_code == 403
        after = server.status()
        assert after.pop("refused")["unauthorised"] == before.pop("refused")["unauthorised"] + 3  # counted
        assert after == before  # and nothing else changed
        assert Deployments(Registry(served)).current("churn", "prod").version == "v1.0.0"


def test_predictions_name_their_version_and_bad_features_get_422(served: Path) -> None:
    with running_server(served, "churn", "prod") as server:
        ok = server.predict(live_records(3, seed=2))
        assert ok.status_code == 200
        body = ok.json()
        assert set(body) == {"predictions", "version", "bundle_id", "slot", "request_id"}
        assert body["version"] == "v1.0.0" and len(body["predictions"]) == 3
        assert set(body["predictions"][0]) == {"prediction", "proba_0", "proba_1"}
        split = pd.DataFrame(live_records(2, seed=3))
        assert server.predict([]).status_code == 400
        columns_body = {"columns": list(split.columns), "data": split.to_numpy().tolist()}
        import httpx

        assert httpx.post(f"{server.url}/predict", json=columns_body, timeout=30).status_code == 200
        broken = [{k: v for k, v in r.items() if k != "age"} for r in live_records(2, seed=4)]
        refused = server.predict(broken)
        assert refused.status_code == 422
        assert refused.json()["columns"] == ["age"]
        status = server.status()
        assert set(status) >= {"name", "env", "live", "standby", "canary", "since"}
        assert status["live"]["version"] == "v1.0.0" and status["canary"] is None


def test_binding_beyond_loopback_needs_an_explicit_flag(served: Path) -> None:
    refused = subprocess.run(
        [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--host", "0.0.0.0"],
        cwd=served,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "--allow-remote" in refused.stderr


def test_the_seed_story_canary_drifts_and_the_watchdog_rolls_back(served: Path) -> None:
    journal = Journal(Registry(served).paths.journal)
    with running_server(served, "churn", "prod", watchdog=0.3, runbook=True) as server:
        started = server.admin("deploy", {"version": "v1.1.0", "canary": 10, "reason": "try boosted v2"})
        assert started.status_code == 200, started.text
        assert server.status()["canary"]["version"] == "v1.1.0"
        drifted = churn_frame(3000, seed=5)
        drifted["support_calls"] += 6  # the tail segment explodes: v2's scores move far from its reference
        drifted["contract"] = "month-to-month"
        records = drifted[ALL_FEATURES].to_dict(orient="records")
        versions = set()
        for i in range(150):
            response = server.predict(records[i * 20 : (i + 1) * 20], key=f"user-{i}")
            assert response.status_code == 200
            versions.add(response.json()["version"])
            if server.status()["canary"] is None:
                break
        assert "v1.1.0" in versions
        import time

        deadline = time.monotonic() + 10
        while server.status()["canary"] is not None and time.monotonic() < deadline:
            server.predict(records[:20], key="user-2")
            time.sleep(0.1)
        status = server.status()
        assert status["canary"] is None and status["live"]["version"] == "v1.0.0"
        # the next tick evaluates live v1.0.0 (its own report replaces the rollback's): the journal keeps why
        breach = next(e for e in reversed(journal.entries()) if e["event"] == "gate-breach")
        rollback = next(e for e in reversed(journal.entries()) if e["event"] == "rollback")
        assert breach["version"] == "v1.1.0" and breach["failed_gates"] == rollback["failed_gates"] != []
        # After the shift, the server runs the rollback runbook; traffic did not wait for it.
        deadline = time.monotonic() + 120
        while not [e for e in journal.entries() if e["event"].startswith("runbook")] and time.monotonic() < deadline:
            time.sleep(0.5)
        runbook = [e for e in journal.entries() if e["event"].startswith("runbook")]
        assert [(e["event"], e.get("status"), e.get("verdict")) for e in runbook] == [
            ("runbook", "ok", "already-rolled-back")
        ], runbook
        record = json.loads(run_cli("runbook", "show", runbook[0]["notebook"], "--json", cwd=served).stdout)
        assert record["results"]["bad_version"] == "v1.1.0"
        assert record["results"]["side_effects"]["affected"]["quarantined"] > 0
        assert record["results"]["side_effects"]["backfill"]["failed"] == 0

    history = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=served).stdout)["assignments"]
    assert [(a["version"], a["action"]) for a in history] == [
        ("v1.0.0", "deploy"),
        ("v1.1.0", "canary"),
        ("v1.0.0", "auto-rollback"),
    ]
    assert "score-drift" in history[-1]["reason"]
    gto = json.loads(run_tool("gto", "show", "--json", cwd=served).stdout)
    assert gto["churn"]["stage"]["prod"] == "v1.0.0"
    assert Journal(Registry(served).paths.journal).verify() == []
    assert "auto" in git(served, "tag", "-l", "--format=%(contents)", history[-1]["tag"])


def test_without_a_log_the_gate_window_holds_every_request_in_order(served: Path) -> None:
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.window import COMPACT_EVERY, WINDOW_ROWS

    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    live = pd.DataFrame(live_records(COMPACT_EVERY + 40, seed=5))
    scored = [environment.predict(live.iloc[[i]]).outputs for i in range(len(live) - 1)]
    with pytest.raises(IncompatibleInput):  # a refused request is the client's error: counted, never windowed
        environment.predict(live.iloc[[len(live) - 1]].drop(columns=["tenure_months"]))
    slot = environment.router.state.slot(environment.router.state.live)
    assert slot is not None
    window = environment.window(slot)

    assert len(window) == len(live) - 1  # across a compaction, nothing lost or reordered
    assert environment.status()["live"]["client_errors"] == 1
    pd.testing.assert_frame_equal(window[ALL_FEATURES], live[ALL_FEATURES].iloc[:-1], check_dtype=False)
    outputs = pd.concat(scored, ignore_index=True)
    pd.testing.assert_frame_equal(window[outputs.columns], outputs, check_dtype=False)
    assert window["error"].isna().all() and window["latency_ms"].gt(0).all()

    big = pd.DataFrame(live_records(WINDOW_ROWS // 2 + 1, seed=6))
    for _ in range(3):
        environment.predict(big)
    window = environment.window(slot)
    assert len(window) == WINDOW_ROWS  # bounded by rows: the newest ones
    pd.testing.assert_frame_equal(
        window[ALL_FEATURES].tail(len(big)).reset_index(drop=True), big[ALL_FEATURES], check_dtype=False
    )


def test_a_window_of_many_small_requests_stays_whole_and_bounded() -> None:
    from rollbackkit.serving.window import COMPACT_EVERY, WINDOW_ROWS, Window

    window, sent = Window(), []
    for i in range(COMPACT_EVERY * COMPACT_EVERY * 2 + 7):  # through every level of stacking, and past the bound
        inputs = pd.DataFrame({"x": [float(i)] * 10, "n": range(10)})
        window.add(inputs, pd.DataFrame({"p": inputs["x"] / 2}), latency_ms=float(i), error=None)
        sent.append(inputs.assign(p=inputs["x"] / 2, latency_ms=float(i), error=None))
        if i == 100:
            assert window.frame()["x"].iloc[-1] == 100.0  # a read in between changes nothing
    expected = pd.concat(sent, ignore_index=True).tail(WINDOW_ROWS).reset_index(drop=True)
    frame = window.frame()
    pd.testing.assert_frame_equal(frame[list(expected.columns)], expected, check_dtype=False)
    assert (frame["row"] == frame["n"]).all() and frame["time"].is_monotonic_increasing  # the live row's keys
    assert window.rows < WINDOW_ROWS + COMPACT_EVERY * COMPACT_EVERY * 10  # old chunks are dropped
