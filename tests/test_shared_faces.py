"""What the on-call engineer reads on the human screen (not only in ``--json``) about a shared
store and a shared git remote: a tag another host cannot see yet, the rows a replica's log
writer keeps in memory, and a dry-run rollback that would only cancel a canary."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from rollbackkit.cli.serving import _assignment_out
from rollbackkit.ops.assignment_results import AssignmentResult
from rollbackkit.ops.plans import rollback_plan
from rollbackkit.ops.traffic import rollback
from rollbackkit.refs import Reference
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository
from rollbackkit.screens.messages import plan

TAG = "churn#prod#7"
PUSH_FAILED = (
    f"{TAG} not pushed to origin: git push: fatal: unable to access 'https://***@git.example/churn.git/': "
    "Could not resolve host: git.example Other hosts do not see it; run: git push origin --tags"
)


def _answer(git_remote: dict) -> dict:
    """A server's rollback answer on a project whose clones share the remote ``origin``."""
    assignment = {
        "name": "churn",
        "env": "prod",
        "version": "v1.0.0",
        "tag": TAG,
        "action": "rollback",
        "time": "2026-11-30T20:14:00+00:00",
    }
    return {"via": "http://127.0.0.1:8800", "assignment": assignment, "shift_ms": 3.2, "git_remote": git_remote}


def test_a_rollback_whose_tag_was_not_pushed_says_so_in_yellow_with_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = AssignmentResult.from_dict(_answer({"remote": "origin", "pushed": [], "error": PUSH_FAILED}))
    assert failed.git_remote is not None and failed.git_remote.error == PUSH_FAILED
    _assignment_out(failed, False, "Rolled back")
    said = " ".join(capsys.readouterr().out.split())
    assert f"{TAG} not pushed to origin" in said and "run: git push origin --tags" in said, said

    _assignment_out(failed, True, "Rolled back")  # --json: the answer, key for key
    assert json.loads(capsys.readouterr().out)["git_remote"]["error"] == PUSH_FAILED

    pushed = AssignmentResult.from_dict(_answer({"remote": "origin", "pushed": [TAG], "error": None}))
    _assignment_out(pushed, False, "Rolled back")
    assert "origin" not in capsys.readouterr().out  # shared: nothing to say

    fetch = "churn's tags not fetched from origin: git fetch: timed out after 10 s"
    unfetched = AssignmentResult.from_dict(_answer({"remote": "origin", "pushed": [TAG], "error": fetch}))
    _assignment_out(unfetched, False, "Rolled back")
    said = " ".join(capsys.readouterr().out.split())
    assert f"{TAG}: {fetch}" in said and "run: git fetch origin --tags" in said, said


def test_the_status_log_row_says_how_much_memory_the_rows_waiting_for_the_store_hold() -> None:
    from rollbackkit.screens.status import _log
    from rollbackkit.serving.status import LogStatus

    said = {"write_errors": 0, "last_write_error": None, "unwritten": 0, "sink_errors": 0, "dropped": 0}
    store = {"reachable": False, "reconnects": 4, "store": "postgresql://db"}
    waiting = LogStatus.from_dict({**said, **store, "buffered": 41_000, "buffered_bytes": 57 * 2**20})
    assert waiting.buffered_bytes == 57 * 2**20 and LogStatus.from_dict(waiting.to_dict()) == waiting
    assert _log(waiting).startswith("store UNREACHABLE, 41000 buffered (57.0 MB), 4 reconnects, 0 dropped")
    few = LogStatus.from_dict({**said, **store, "reachable": True, "buffered": 3, "buffered_bytes": 900})
    assert _log(few).startswith("store reachable, 3 buffered (< 0.1 MB), 4 reconnects"), _log(few)
    empty = LogStatus.from_dict({**said, **store, "reachable": True, "buffered": 0, "buffered_bytes": 0})
    assert _log(empty).startswith("store reachable, 0 buffered, 4 reconnects"), _log(empty)


def test_a_dry_run_and_a_workspace_rollback_that_only_cancel_a_canary_never_preflight_the_live_version(
    served: Path,
) -> None:
    """A 3 AM canary abort on drifted inputs: the live v1.0.0 already serves them, so neither the
    plan nor the rollback checks it (an incompatible verdict would need --force for nothing)."""
    registry = Repository(served)
    Deployments(registry).assign(registry.find(Reference("churn", "v1.1.0")), "prod", "canary", canary_percent=10)
    drifted = pd.DataFrame({"tenure": pd.array([3, None, 40], dtype="Int64"), "plan": ["a", "b", "c"]})
    planned = rollback_plan(served, "churn", "prod", features=drifted)
    assert planned.cancelled is not None and planned.cancelled.kept and planned.target == "v1.0.0"
    assert planned.preflight.verdict == "skipped", planned.preflight  # was "incompatible": 45 columns missing
    console = Console(file=io.StringIO(), width=80, no_color=True)
    plan(console, planned, features=True)
    said = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]
    assert "preflight skipped (v1.0.0 already serves live traffic)" in said, said

    done = rollback(served, "churn", "prod", reason="abort the canary", features=drifted)  # was PreflightFailed
    assert done.preflight is not None and done.preflight.verdict == "skipped" and done.assignment.version == "v1.0.0"
    assert Deployments(registry).state("churn", "prod").canary is None
