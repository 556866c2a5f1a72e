"""What the on-call engineer reads on the human screen (not only in ``--json``) about a shared
store and a shared git remote: a tag another host cannot see yet, the rows a replica's log
writer keeps in memory, and a dry-run rollback that would only cancel a canary."""

from __future__ import annotations

import json

import pytest

from rollbackkit.cli import _assignment_out
from rollbackkit.ops.results import AssignmentResult

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
