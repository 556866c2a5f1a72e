"""deploy, canary, promote and rollback say what happened, at 80 columns: from -> to, the share,
the preflight verdict, the shift time, the tag and the via; a dry run prints its plan; ``rollback
--runbook`` runs the rollback runbook and prints where its record is; ``serve`` prints a line per
traffic change. All through the real CLI, against a real server."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rollbackkit import Registry
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository

from .conftest import live_records, run_cli
from .servers import TOKEN, Server, running_server
from .terminal import Screen, screen
from .test_gates import churn, gated, window_for  # noqa: F401 (churn and gated are fixtures)

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
REASON = "scores for the Überseeische tail segment collapsed after the 02:10 feature backfill (see pager)"


def _cli(*args: str, cwd: Path) -> Screen:
    shown = screen(*args, cwd=cwd, env=ADMIN)
    assert shown.returncode == 0, shown
    assert shown.widest() <= 80, shown
    return shown


def _logged_rows(server: Server, version: str, rows: int) -> None:
    """Wait until the server's log writer has committed ``rows`` rows of ``version`` (what
    ``rollbackkit affected`` asks the server, without a process per poll)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = server.admin("affected", {"version": version})
        if found.status_code == 200 and found.json()["rows"] >= rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"{rows} rows of {version} never reached the log")


def test_a_canary_a_promotion_a_dry_run_and_a_rollback_with_its_runbook_say_what_happened(served: Path) -> None:
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        assert server.predict(live_records(60, seed=5)).status_code == 200

        canary = _cli("deploy", "churn@v1.1.0", "--env", "prod", "--canary", "30", "--reason", "try v2", cwd=served)
        assert canary.whole("churn in prod: v1.0.0 -> v1.1.0 (canary)"), canary
        assert canary.whole("v1.1.0 takes 30% of traffic, v1.0.0 the rest"), canary
        assert canary.whole("preflight") and any(v in canary.stdout for v in ("compatible,", "adaptable,")), canary
        assert "finding" in canary.stdout and f"ms via {server.url}" in canary.stdout, canary
        tags = [a.tag for a in Deployments(Repository(served)).history("churn", "prod")]
        assert canary.whole(tags[-1]), canary

        promoted = _cli("promote", "churn", "--env", "prod", "--reason", "v2 looks fine", cwd=served)
        assert promoted.whole("Promoted churn in prod: v1.0.0 -> v1.1.0 (promote)"), promoted
        assert promoted.whole("v1.1.0 takes all traffic"), promoted

        assert server.predict(live_records(40, seed=6)).status_code == 200
        _logged_rows(server, "v1.1.0", 40)
        planned = _cli("rollback", "churn", "--env", "prod", "--reason", REASON, "--dry-run", cwd=served)
        assert planned.whole("Dry run") and planned.whole("v1.1.0 -> v1.0.0"), planned
        rows = json.loads(
            run_cli("affected", "churn", "--env", "prod", "--version", "v1.1.0", "--json", cwd=served, env=ADMIN).stdout
        )["rows"]
        assert f"v1.1.0 rows {rows} logged: {rows} would be quarantined, {rows} backfilled" in " ".join(
            planned.stdout.split()
        ), planned
        assert server.status()["live"]["version"] == "v1.1.0"  # a dry run changes nothing
        as_json = run_cli(
            "rollback", "churn", "--env", "prod", "--reason", "x", "--dry-run", "--json", cwd=served, env=ADMIN
        )
        plan = json.loads(as_json.stdout)
        assert (plan["previous"], plan["target"], plan["rows"][0]["quarantine"]) == ("v1.1.0", "v1.0.0", rows)

        rolled = _cli(
            "rollback", "churn", "--env", "prod", "--reason", REASON, "--incident", "INC-4711", "--runbook", cwd=served
        )
        assert rolled.whole("Rolled back churn in prod: v1.1.0 -> v1.0.0 (rollback)"), rolled
        assert rolled.whole("v1.0.0 takes all traffic") and rolled.whole("INC-4711"), rolled
        assert f"ms via {server.url}" in rolled.stdout and "preflight" in rolled.stdout, rolled
        record = next(row.split()[-1] for row in rolled.rows if row.startswith("record "))
        assert (served / record).is_file() and record.endswith(".ipynb") and "INC-4711" in record, rolled
        assert rolled.whole("verdict already-rolled-back (ok)"), rolled
        seconds = json.loads((served / record).read_text())["metadata"]["rollbackkit"]["seconds"]
        assert rolled.whole(f"in {seconds:g} s"), rolled  # the runbook's run, as runbook show says
        assert rolled.whole(f"{rows} rows re-scored"), rolled
        assert not any(w in rolled.stdout + rolled.stderr for w in ("Warning", "warning")), rolled
    said = server.log.read_text()
    assert "churn prod: v1.0.0 -> v1.1.0 (canary 30%) churn#prod#2" in said, said
    assert "churn prod: v1.0.0 -> v1.1.0 (promote) churn#prod#3" in said, said
    assert "churn prod: v1.1.0 -> v1.0.0 (rollback) churn#prod#4" in said, said


def test_a_rollback_without_a_server_says_it_restored_the_workspace(served: Path) -> None:
    deployed = _cli("deploy", "churn@v1.1.0", "--env", "prod", "--reason", "new model", cwd=served)
    assert deployed.whole("Deployed churn in prod: v1.0.0 -> v1.1.0 (deploy)"), deployed
    assert deployed.whole("workspace (no server") and "finding" in deployed.stdout, deployed
    planned = _cli("rollback", "churn", "--env", "prod", "--reason", "bad", "--dry-run", cwd=served)
    assert planned.whole("v1.1.0 -> v1.0.0") and "via workspace" in planned.stdout, planned
    assert Deployments(Repository(served)).state("churn", "prod").version == "v1.1.0"
    rolled = _cli("rollback", "churn", "--env", "prod", "--reason", REASON, cwd=served)
    assert rolled.whole("Rolled back churn in prod: v1.1.0 -> v1.0.0 (rollback)"), rolled
    assert rolled.whole("reason") and "Überseeische" in rolled.stdout, rolled
    as_json = json.loads(run_cli("deploy", "churn@v1.1.0", "--env", "prod", "--json", cwd=served, env=ADMIN).stdout)
    assert sorted(as_json) == ["assignment", "preflight", "restored", "via"]  # --json keeps its shape


def test_serve_prints_an_automatic_rollback_and_its_runbook_record(served: Path) -> None:
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame

    with running_server(served, "churn", "prod", watchdog=0.3, runbook=True) as server:
        started = server.admin("deploy", {"version": "v1.1.0", "canary": 10, "reason": "try boosted v2"})
        assert started.status_code == 200, started.text
        drifted = churn_frame(3000, seed=5)
        drifted["support_calls"] += 6  # v2's scores move far from its reference: the drift gate fails
        drifted["contract"] = "month-to-month"
        records = drifted[ALL_FEATURES].to_dict(orient="records")
        deadline = time.monotonic() + 60
        i = 0
        while server.status()["canary"] is not None and time.monotonic() < deadline:
            assert server.predict(records[(i % 150) * 20 : (i % 150 + 1) * 20], key=f"user-{i}").status_code == 200
            i += 1
        deadline = time.monotonic() + 120
        while "rollback runbook:" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
    said = server.log.read_text()
    lines = said.splitlines()
    assert any("churn prod: v1.0.0 -> v1.1.0 (canary 10%)" in line for line in lines), said
    rolled = [line for line in lines if "churn prod: v1.1.0 -> v1.0.0 (auto-rollback: " in line]
    assert rolled and "score-drift" in rolled[0] and " ms" in rolled[0], said
    runbook = next(line for line in lines if "rollback runbook: verdict already-rolled-back (ok), record " in line)
    assert (served / runbook.split("record ")[-1]).is_file(), said


def test_gates_check_wraps_at_80_columns_and_says_each_status_once(gated: Registry, tmp_path: Path) -> None:  # noqa: F811
    from rollbackkit.demo.data import churn_frame

    small = window_for(gated, churn_frame(60, seed=3))  # too few rows: most gates insufficient, with reasons
    shifted = window_for(gated, churn_frame(3000, seed=14))
    shifted = shifted.assign(proba_1=(shifted["proba_1"] + 0.35).clip(0, 1))
    for window, decision in ((small, "inconclusive"), (shifted, "rollback")):
        path = tmp_path / f"{decision}.parquet"
        window.to_parquet(path)
        shown = screen("gates", "check", "churn@v1.0.0", "--window", str(path), cwd=gated.root)
        assert shown.returncode == (3 if decision == "rollback" else 0), shown
        assert shown.rows[0].startswith(f"churn@v1.0.0: {decision} ("), shown
        assert shown.widest() <= 80 and shown.no_ellipsis(), shown
        statuses = [row.split()[0] for row in shown.rows[1:] if row.startswith("  ") and not row.startswith("   ")]
        assert statuses and set(statuses) <= {"pass", "fail", "insufficient"}, shown
        assert "[" not in shown.stdout, shown
        for status in ("pass", "fail", "insufficient"):  # said once per gate, in its column
            assert shown.stdout.count(status) == statuses.count(status), shown
