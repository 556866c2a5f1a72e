"""Runbooks against a server that keeps no prediction log (``serve --no-log``), the
incident review's time window, and every template's parameter cell read as papermill reads it."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.ops.runbook_templates import templates
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal

from .conftest import live_records, run_cli
from .servers import TOKEN, running_server

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}


@pytest.mark.parametrize("template", sorted(templates()))
def test_every_declared_parameter_of_every_template_is_understood_by_papermill(
    template: str, caplog: pytest.LogCaptureFixture
) -> None:
    from papermill.translators import PythonTranslator

    path = templates()[template]
    assert path.resolve().parent.name == "runbooks" and path.resolve().is_file()  # the shipped notebook
    notebook = nbformat.read(str(path), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [line.split(":")[0].split("=")[0].strip() for line in cell.source.splitlines() if line.strip()]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        parsed = PythonTranslator.inspect(cell)
    assert not [r.getMessage() for r in caplog.records], "papermill could not parse a line"
    assert [p.name for p in parsed] == assigned  # every line of the cell is a parameter it sees
    assert all(p.inferred_type_name in {"str", "int", "float", "bool"} for p in parsed), parsed

    shown = run_cli("runbook", "templates", "--json", cwd=path.parent)
    assert shown.returncode == 0 and "Unable to parse" not in shown.stdout + shown.stderr
    assert [p["name"] for p in json.loads(shown.stdout)[template]] == assigned
    helps = {p["name"]: p["help"] for p in json.loads(shown.stdout)[template]}
    if "to_version" in helps:  # the default target is the one rule, not "the version before"
        assert "not rolled back from" in helps["to_version"], helps["to_version"]


def _runbook(repo: Path, template: str, *params: str) -> dict:
    done = run_cli("runbook", "run", template, *[f"-p{p}" for p in params], "--json", cwd=repo, env=ADMIN)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_without_a_prediction_log_every_runbook_reaches_its_verdict(served: Path) -> None:
    """An environment served with --no-log: the log cells say so, the runbooks carry on."""
    first = Deployments(Registry(served)).history("churn", "prod")[0]
    with running_server(served, "churn", "prod", args=("--no-log",)) as server:
        assert server.predict(live_records(40, seed=3)).status_code == 200
        deployed = run_cli("deploy", "churn@v1.1.0", "--env", "prod", cwd=served, env=ADMIN)
        assert deployed.returncode == 0, deployed.stderr
        assert server.predict(live_records(40, seed=4)).status_code == 200

        planned = _runbook(served, "rollback", "name=churn", "reason=tail degraded", "dry_run=true")
        assert (planned["status"], planned["verdict"]) == ("ok", "dry-run"), planned["error"]
        side = planned["results"]["side_effects"]
        assert (side["version"], side["logged"], side["note"]) == ("v1.1.0", False, "no prediction log")
        assert server.status()["live"]["version"] == "v1.1.0"  # a dry run changes nothing

        done = _runbook(served, "rollback", "name=churn", "reason=tail degraded", "incident=INC-21")
        assert (done["status"], done["verdict"]) == ("ok", "rolled-back"), done["error"]
        assert done["results"]["side_effects"]["note"] == "no prediction log"
        assert server.status()["live"]["version"] == "v1.0.0"

        since = (datetime.fromisoformat(first.time) + timedelta(seconds=1)).isoformat()
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        review = _runbook(served, "incident_review", "name=churn", f"since={since}", f"until={until}")
        assert (review["status"], review["verdict"]) == ("ok", "reviewed"), review["error"]
        results = review["results"]
        assert (results["since"], results["until"]) == (since, until)
        assert (results["assignments"], results["rollbacks"]) == (2, 1)  # the first release is before `since`
        assert results["drift"] == results["rows"] == "no prediction log"

    affected = run_cli("affected", "churn", "--env", "prod", "--version", "v1.1.0", cwd=served)
    assert affected.returncode == 1 and "no prediction log" in affected.stderr.lower()


def test_runbook_show_leads_with_a_failed_runbook_s_error(served: Path, tmp_path: Path) -> None:
    """A runbook that recorded a hopeful verdict, then failed: the record must not read as success."""
    template = tmp_path / "repair.ipynb"
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "rollbackkit", "language": "python", "display_name": "rollbackkit"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell('incident: str = ""  # incident id', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('from rollbackkit.ops.runbooks import record\n\nrecord(verdict="rolled-back")'),
        nbformat.v4.new_code_cell('# backfill\nraise RuntimeError("the sink is down\\nsecond line")'),
    ]
    nbformat.write(notebook, str(template))
    ran = run_cli("runbook", "run", str(template), "-p", "incident=INC-12", cwd=served)
    assert ran.returncode == 1 and "FAILED" in ran.stdout and "RuntimeError: the sink is down" in ran.stdout
    saved = next((served / "audit" / "runbooks").glob("*-repair-INC-12.ipynb"))

    shown = run_cli("runbook", "show", str(saved), cwd=served)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("repair: FAILED in cell [") and lines[0].endswith("# backfill")
    assert lines[1] == "  error: RuntimeError: the sink is down"
    assert "verdict: failed" in lines[2] and "verdict rolled-back" not in shown.stdout
    record = json.loads(run_cli("runbook", "show", str(saved), "--json", cwd=served).stdout)
    assert record["status"] == "failed" and record["failed_cell"]["error"] == "RuntimeError: the sink is down"


def test_the_watchdog_s_own_runbook_completes_without_a_prediction_log(served: Path) -> None:
    """serve --no-log: the watchdog still rolls a drifting canary back, and the runbook it
    starts afterwards reaches its verdict instead of failing at the side-effects cell."""
    journal = Journal(Registry(served).paths.journal)
    with running_server(served, "churn", "prod", watchdog=0.3, runbook=True, args=("--no-log",)) as server:
        assert server.admin("deploy", {"version": "v1.1.0", "canary": 10}).status_code == 200
        drifted = churn_frame(3000, seed=5)
        drifted["support_calls"] += 6  # v2's scores move far from its reference
        drifted["contract"] = "month-to-month"
        records = drifted[ALL_FEATURES].to_dict(orient="records")
        deadline = time.monotonic() + 60
        i = 0
        while server.status()["canary"] is not None and time.monotonic() < deadline:
            assert server.predict(records[(i % 150) * 20 : (i % 150 + 1) * 20], key=f"user-{i}").status_code == 200
            i += 1
        assert server.status()["live"]["version"] == "v1.0.0"
        deadline = time.monotonic() + 120
        while not [e for e in journal.entries() if e["event"] == "runbook"] and time.monotonic() < deadline:
            time.sleep(0.5)
    runbook = [e for e in journal.entries() if e["event"] == "runbook"]
    assert [(e["status"], e["verdict"]) for e in runbook] == [("ok", "already-rolled-back")], runbook
    record = json.loads(run_cli("runbook", "show", runbook[0]["notebook"], "--json", cwd=served).stdout)
    assert record["results"]["side_effects"]["note"] == "no prediction log"
