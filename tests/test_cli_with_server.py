"""The CLI while a server runs: it asks the server (the log's one writer) and names the person."""

from __future__ import annotations

import json
from pathlib import Path

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
        assert report["decision"] in {"pass", "warn", "rollback"} and report["gates"]

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
