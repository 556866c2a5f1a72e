"""The on-call engineer's commands: deploy and rollback with and without a running server."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rollbackkit import Registry
from rollbackkit.bundle.manifest import md5_file
from rollbackkit.registry.assignments import Deployments

from .conftest import live_records, run_cli
from .servers import TOKEN, running_server


def test_offline_rollback_restores_the_previous_bundle_and_records_why(served: Path, tmp_path: Path) -> None:
    deployed = run_cli("deploy", "churn@v1.1.0", "--env", "prod", "--reason", "new model", "--json", cwd=served)
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["via"] == "workspace"
    features = tmp_path / "live.csv"
    pd.DataFrame(live_records(300, seed=41)).to_csv(features, index=False)
    rolled = run_cli(
        "rollback",
        "churn",
        "--env",
        "prod",
        "--reason",
        "tail segment degraded",
        "--incident",
        "INC-42",
        "--features",
        str(features),
        "--json",
        cwd=served,
    )
    assert rolled.returncode == 0, rolled.stderr
    body = json.loads(rolled.stdout)
    assert body["assignment"]["version"] == "v1.0.0" and body["preflight"]["verdict"] == "adaptable"
    manifest = Registry(served).manifest("churn@v1.0.0")
    assert md5_file(served / "bundles/churn/model.skops") == manifest.components["model"].md5
    last = Deployments(Registry(served)).current("churn", "prod")
    assert (last.action, last.reason, last.incident) == ("rollback", "tail segment degraded", "INC-42")


def test_an_incompatible_target_is_refused_unless_forced_and_forcing_is_recorded(served: Path, tmp_path: Path) -> None:
    run_cli("deploy", "churn@v1.1.0", "--env", "prod", cwd=served)
    broken = tmp_path / "broken.csv"
    pd.DataFrame(live_records(100, seed=42)).drop(columns=["tenure_months"]).to_csv(broken, index=False)
    before = Deployments(Registry(served)).history("churn", "prod")
    refused = run_cli("rollback", "churn", "--env", "prod", "--reason", "x", "--features", str(broken), cwd=served)
    assert refused.returncode == 1
    assert "tenure_months: missing_column" in refused.stderr and "Nothing was changed" in refused.stderr
    assert Deployments(Registry(served)).history("churn", "prod") == before
    forced = run_cli(
        "rollback", "churn", "--env", "prod", "--reason", "x", "--features", str(broken), "--force", cwd=served
    )
    assert forced.returncode == 0, forced.stderr
    assert Deployments(Registry(served)).current("churn", "prod").forced is True


def test_with_a_server_running_the_cli_shifts_traffic_through_it(served: Path) -> None:
    with running_server(served, "churn", "prod") as server:
        env = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
        deployed = run_cli("deploy", "churn@v1.1.0", "--env", "prod", "--json", cwd=served, env=env)
        assert deployed.returncode == 0, deployed.stderr
        assert json.loads(deployed.stdout)["via"] == server.url
        assert server.status()["live"]["version"] == "v1.1.0"
        rolled = run_cli("rollback", "churn", "--env", "prod", "--reason", "drift", "--json", cwd=served, env=env)
        assert rolled.returncode == 0, rolled.stderr
        body = json.loads(rolled.stdout)
        assert body["via"] == server.url and body["shift_ms"] < 1000
        assert server.status()["live"]["version"] == "v1.0.0"
        assert server.status()["standby"]["version"] == "v1.1.0"  # still warm for the next deploy
        wrong = run_cli(
            "rollback",
            "churn",
            "--env",
            "prod",
            "--reason",
            "x",
            cwd=served,
            env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN[::-1]},
        )
        assert wrong.returncode == 1 and "wrong" in wrong.stderr
    verified = run_cli("journal", "verify", "--json", cwd=served)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
