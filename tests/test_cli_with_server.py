"""The CLI while a server runs: it asks the server (the log's one writer) and names the person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import live_records, run_cli
from .servers import TOKEN, running_server

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}


def test_gates_check_against_a_served_environment_asks_its_server(served: Path) -> None:
    with running_server(served, "churn", "prod") as server:
        for seed in range(3):
            assert server.predict(live_records(200, seed=seed)).status_code == 200
        checked = run_cli("gates", "check", "churn@v1.0.0", "--env", "prod", "--json", cwd=served, env=ADMIN)
        assert checked.returncode in (0, 3), checked.stderr  # 3: the decision is rollback
        report = json.loads(checked.stdout)
        assert (report["version"], report["n"]) == ("churn@v1.0.0", 600)
        assert report["decision"] in {"pass", "warn", "inconclusive", "rollback"} and report["gates"]

        text = run_cli("gates", "check", "churn@v1.0.0", "--env", "prod", cwd=served, env=ADMIN)
        assert text.stdout.startswith(f"churn@v1.0.0: {report['decision']} (600 rows)"), text.stderr
        assert "lock" not in text.stderr.lower()
    # With the server gone the CLI reads the log file itself, and sees the same rows.
    offline = run_cli("gates", "check", "churn@v1.0.0", "--env", "prod", "--json", cwd=served)
    assert json.loads(offline.stdout)["n"] == 600, offline.stderr


def test_assignments_made_through_the_cli_record_the_person(served: Path) -> None:
    """conftest's git identity is Ada Oncall; the OS user running the tests is someone else."""
    with running_server(served, "churn", "prod") as server:
        steps = [
            ("deploy", "churn@v1.1.0", "--env", "prod", "--canary", "20"),
            ("promote", "churn", "--env", "prod"),
            ("rollback", "churn", "--env", "prod", "--reason", "tail degraded"),
        ]
        for step in steps:
            done = run_cli(*step, "--json", cwd=served, env=ADMIN)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["via"] == server.url
        anonymous = server.admin("deploy", {"version": "v1.1.0", "reason": "by a script"})
        assert anonymous.status_code == 200, anonymous.text

    history = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=served).stdout)["assignments"]
    made = [(a["action"], a["actor"]) for a in history[1:]]
    assert made == [
        ("canary", "Ada Oncall"),
        ("promote", "Ada Oncall"),
        ("rollback", "Ada Oncall"),
        ("deploy", "admin-api"),  # a call that names nobody
    ]


def test_a_side_effects_check_asks_the_server_for_its_status_once(
    logged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runbook's repair step looks up the rows and backfills them through the server that
    writes the log; which server that is, it asks once, not once per call."""
    import httpx

    from rollbackkit.ops.predictions import side_effects

    asked: list[str] = []
    real_get = httpx.get

    def counting_get(url: str, **kwargs: Any) -> httpx.Response:
        asked.append(str(url))
        return real_get(url, **kwargs)

    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)
    with running_server(logged, "churn", "prod") as server:
        monkeypatch.setattr(httpx, "get", counting_get)
        done = side_effects(logged, "churn", "prod", "v1.1.0", repair=True)
        monkeypatch.undo()
        assert server.status()["log"] is not None
    assert done.logged and done.affected is not None and done.affected.quarantined > 0
    assert done.backfill is not None and done.backfill.rescored == done.affected.quarantined
    assert [u for u in asked if u.endswith("/status")] == [f"{server.url}/status"]
