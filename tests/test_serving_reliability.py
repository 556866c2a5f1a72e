"""Reliability of the real server on 127.0.0.1: shifts under load, and kill -9 mid-deploy."""

from __future__ import annotations

import bisect
import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from rollbackkit import Registry
from rollbackkit.locking import CRASH_ENV
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal

from .conftest import git, live_records
from .servers import running_server

TOLERANCE_S = 0.005


def test_100_alternating_shifts_under_load_drop_no_request(served: Path, tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    records.write_text(json.dumps(live_records(200, seed=31)))
    with running_server(served, "churn", "prod", watchdog=3600) as server:  # shifts only; no auto-rollback
        # Make both versions warm: v1.1.0 live, then back, so v1.1.0 waits in the standby slot.
        assert server.admin("deploy", {"version": "v1.1.0"}).status_code == 200
        assert server.admin("rollback", {"reason": "warm both slots"}).status_code == 200
        shifts = [(datetime.fromisoformat(server.status()["since"]).timestamp(), "v1.0.0")]
        out = tmp_path / "load.json"
        loader = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "loader.py"), server.url, str(records), "120", "2", str(out)]
        )
        for i in range(100):
            response = (
                server.admin("deploy", {"version": "v1.1.0", "reason": f"shift {i}"})
                if i % 2 == 0
                else server.admin("rollback", {"reason": f"shift {i}"})
            )
            assert response.status_code == 200, response.text
            status = response.json()["status"]
            shifts.append((datetime.fromisoformat(status["since"]).timestamp(), status["live"]["version"]))
        Path(f"{out}.stop").touch()
        loader.wait(timeout=180)
    results = json.loads(out.read_text())
    responses = [r for client in results.values() for r in client]
    assert len(responses) > 500
    assert [r for r in responses if r["status"] != 200] == []
    assert {r["version"] for r in responses} <= {"v1.0.0", "v1.1.0"}
    during = [r for r in responses if shifts[1][0] <= r["sent"] <= shifts[-1][0]]
    assert {r["version"] for r in during} == {"v1.0.0", "v1.1.0"}  # traffic really moved back and forth
    times = [t for t, _ in shifts]
    for client in results.values():
        for r in sorted(client, key=lambda r: r["sent"]):
            start = bisect.bisect_right(times, r["sent"] - TOLERANCE_S) - 1
            end = bisect.bisect_right(times, r["received"] + TOLERANCE_S)
            allowed = {shifts[i][1] for i in range(max(start, 0), end)}
            assert r["version"] in allowed, (r, allowed)
    history = Deployments(Registry(served)).history("churn", "prod")
    assert len(history) == 103 and history[-1].version == "v1.0.0"  # the 100th operation was a rollback


@pytest.mark.parametrize("step", ["deploy_shifted", "rollback_shifted"])
def test_kill_9_during_an_operation_leaves_the_last_completed_assignment(served: Path, step: str) -> None:
    registry = Registry(served)
    if step == "rollback_shifted":
        with running_server(served, "churn", "prod") as server:
            assert server.admin("deploy", {"version": "v1.1.0"}).status_code == 200
    tags_before = git(served, "tag", "-l", "churn#*")
    serving_before = Deployments(registry).serving("churn", "prod").version
    with running_server(served, "churn", "prod", extra_env={CRASH_ENV: step}) as server:
        with pytest.raises(httpx.HTTPError):
            if step == "deploy_shifted":
                server.admin("deploy", {"version": "v1.1.0"})
            else:
                server.admin("rollback", {"reason": "crash test"})
        server.process.wait(timeout=30)
        assert server.process.returncode == -signal.SIGKILL
    assert git(served, "tag", "-l", "churn#*") == tags_before  # no half-made or extra tag
    subprocess.run(["git", "-C", str(served), "fsck", "--no-dangling"], check=True, capture_output=True)
    assert Journal(registry.paths.journal).verify() == []
    with running_server(served, "churn", "prod") as restarted:
        assert restarted.status()["live"]["version"] == serving_before
        assert restarted.predict(live_records(2, seed=9)).json()["version"] == serving_before
