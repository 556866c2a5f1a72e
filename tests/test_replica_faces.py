"""What the on-call engineer reads when an operation does not reach every replica.

Two real replicas of ``churn/prod`` on one store (tests/postgres.py), in this process: ``a`` on
the project, ``b`` on another host's checkout that lacks ``churn@v1.1.0``. A deploy sent to
``a`` cannot reach ``b``: the CLI says so (never a plain green "Deployed"), exits 4, and
``rollbackkit status`` marks ``b`` behind the published generation.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from rollbackkit.cli.serving import NOT_EVERYWHERE, _assignment_out
from rollbackkit.errors import StoreNotCreated
from rollbackkit.ops.assignment_results import AssignmentResult
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.sync import ReplicaSync

from .conftest import copy_project
from .test_store_cli import status_here


@pytest.fixture
def two(served: Path, store_url: str, tmp_path: Path) -> Iterator[tuple[ServingEnvironment, ServingEnvironment]]:
    """Replica ``a`` (knows v1.1.0) and ``b`` (its checkout lacks v1.1.0), both serving v1.0.0."""
    other = copy_project(served, tmp_path / "second-checkout")
    subprocess.run(["git", "tag", "-d", "churn@v1.1.0"], cwd=other, check=True, capture_output=True)
    store, started = open_store(store_url), []
    for repo, replica in ((served, "a"), (other, "b")):
        env = ServingEnvironment(repo, "churn", "prod", scoring_threads=None)
        env.start()
        env.sync = ReplicaSync(env, store, replica, heartbeat=0.2, poll=0.3, converge_timeout=5.0)
        env.sync.start()
        started.append(env)
    yield started[0], started[1]
    for env in started:
        if env.sync is not None:
            env.sync.stop()


def _said(
    result: AssignmentResult, verb: str, capsys: pytest.CaptureFixture[str], *, as_json: bool = False
) -> tuple[int, str]:
    """What ``deploy``/``rollback`` print for ``result`` and their exit code."""
    code = 0
    try:
        _assignment_out(result, as_json, verb)
    except typer.Exit as exc:
        code = exc.exit_code
    return code, capsys.readouterr().out


def test_a_deploy_one_replica_cannot_load_says_so_exits_4_and_status_shows_it_behind(
    two: tuple[ServingEnvironment, ServingEnvironment], served: Path, store_url: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("COLUMNS", "200")
    a, _ = two
    answer = a.deploy("v1.1.0", reason="only a has it")
    result = AssignmentResult.from_dict({"via": "http://replica-a", **answer})
    reach = result.replicas
    assert reach is not None and not reach.converged and not result.converged
    assert list(reach.lagging) == ["b"] and reach.serves("b") == "v1.0.0" and (reach.reached, reach.total) == (1, 2)

    code, out = _said(result, "Deployed", capsys)
    assert code == NOT_EVERYWHERE == 4, out
    lines = out.splitlines()
    assert lines[0].startswith("Deployed churn in prod on 1 of 2 replicas: "), out
    assert "1 of 2 replicas serve v1.1.0 (generation 2" in out
    lagging = next(line for line in lines if line.startswith("b "))
    assert lagging.startswith("b still serves v1.0.0: cannot load v1.1.0: "), out
    assert lagging.endswith("(fix it, then: rollbackkit status churn --env prod)"), out

    code, out = _said(result, "Deployed", capsys, as_json=True)
    assert code == 4 and json.loads(out)["replicas"]["lagging"]["b"].startswith("cannot load v1.1.0")

    shown = status_here(served, store_url)
    assert shown.returncode == 0, shown.stderr
    assert "generation 2 published (deploy by a" in shown.stdout, shown.stdout
    row_b = next(line for line in shown.stdout.splitlines() if line.strip().startswith("b "))
    row_a = next(line for line in shown.stdout.splitlines() if line.strip().startswith("a "))
    assert "behind (gen 1 of 2)" in row_b and "behind" not in row_a, shown.stdout
    assert json.loads(status_here(served, store_url, "--json").stdout)["routing"]["generation"] == 2

    back = AssignmentResult.from_dict({"via": "http://replica-a", **a.rollback(reason="not everywhere")})
    code, out = _said(back, "Rolled back", capsys)
    assert code == 0 and back.converged, out
    assert out.splitlines()[0].startswith("Rolled back churn in prod"), out
    assert "2 of 2 replicas serve v1.0.0 (generation 3, " in out


def test_status_and_find_server_never_create_the_schema_of_a_store(
    served: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(StoreNotCreated, match="holds no rollbackkit schema yet"):
        open_store(store_url, migrate=False)
    shown = status_here(served, store_url)
    assert shown.returncode == 0, shown.stderr
    said = [line for line in shown.stdout.splitlines() if "no rollbackkit schema" in line]
    assert len(said) == 1 and said[0].lstrip().startswith("replicas"), shown.stdout
    import psycopg

    with psycopg.connect(store_url, autocommit=True) as con:
        assert con.execute("SELECT to_regclass('rollbackkit.meta')").fetchone() == (None,), "nothing created"


def test_an_operation_not_published_to_the_other_replicas_says_so_and_exits_4(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assignment = {"name": "churn", "env": "prod", "version": "v1.0.0", "action": "rollback", "tag": "churn#prod#9",
                  "time": "2026-11-30T20:00:00+00:00", "reason": "bad canary"}  # fmt: skip
    lost = "not published to the other replicas: Cannot reach the store postgresql://u:***@db/rk."
    answer = {"via": "http://web-1", "assignment": assignment, "shift_ms": 2.0,
              "replicas": {"generation": 41, "converged": False, "waited_ms": 0.0, "replicas": [],
                           "lagging": {"web-1": lost}, "superseded_by": None}}  # fmt: skip
    result = AssignmentResult.from_dict(answer)
    code, out = _said(result, "Rolled back", capsys)
    assert code == 4 and out.startswith("Rolled back churn in prod on this replica only: "), out
    assert f"{lost}; the other replicas may still serve what they served" in " ".join(out.split()), out
    assert "0 of" not in out and result.to_dict() == answer


def test_a_rollback_superseded_by_another_replicas_deploy_says_what_the_fleet_serves_and_exits_4(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assignment = {"name": "churn", "env": "prod", "version": "v1.0.0", "action": "rollback", "tag": "churn#prod#9",
                  "time": "2026-11-30T20:00:00+00:00", "reason": "bad canary"}  # fmt: skip
    newer = {"live": {"version": "v1.2.0", "tag": "churn#prod#10", "percent": None}, "canary": None}
    fleet = [{"replica": r, "generation": 43, "serving": newer, "error": None} for r in ("r1", "r2", "r3")]
    later = {"generation": 43, "action": "deploy", "by": "r2"}
    answer = {"via": "http://r1", "assignment": assignment, "shift_ms": 2.0,
              "replicas": {"generation": 42, "converged": True, "waited_ms": 14.0, "replicas": fleet,
                           "lagging": {}, "superseded_by": later}}  # fmt: skip
    result = AssignmentResult.from_dict(answer)
    assert result.to_dict() == answer and not result.converged
    code, out = _said(result, "Rolled back", capsys)
    assert code == NOT_EVERYWHERE, out
    assert out.startswith("Rolled back churn in prod, then superseded: "), out
    said = " ".join(out.split())
    assert (
        "3 of 3 replicas reached generation 42 (14.0 ms), then superseded by deploy (generation 43) by r2: "
        "the replicas serve v1.2.0 live (check: rollbackkit status churn --env prod)" in said
    ), out
    assert "serve v1.0.0" not in said, out

    kept = {"live": {"version": "v1.0.0", "tag": "churn#prod#9", "percent": None},
            "shadow": {"version": "v1.2.0", "tag": "churn#prod#10", "percent": 10}}  # fmt: skip
    reach = answer["replicas"]
    assert isinstance(reach, dict)
    reach["replicas"] = [{**r, "serving": kept} for r in fleet]
    code, out = _said(AssignmentResult.from_dict(answer), "Rolled back", capsys)
    assert code == 0 and out.startswith("Rolled back churn in prod: "), out
    assert "the replicas serve v1.0.0 live, v1.2.0 shadow 10%" in " ".join(out.split()), out


def test_status_reads_of_a_hung_store_give_up_in_seconds_and_a_bug_is_not_hidden_as_no_generation(
    served: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import psycopg

    from rollbackkit.ops import replicas as ops_replicas

    open_store(store_url)  # a replica created the schema
    monkeypatch.setenv("ROLLBACKKIT_STORE", store_url)
    with psycopg.connect(store_url) as dba:  # a migration holds the routing table: reads of it wait
        dba.execute("LOCK TABLE rollbackkit.routing IN ACCESS EXCLUSIVE MODE")
        answers: list[object] = []
        reader = threading.Thread(target=lambda: answers.append(ops_replicas.published(served, "churn", "prod")))
        reader.start()
        reader.join(timeout=10)
        hung = reader.is_alive()
    reader.join()
    assert not hung and answers == [None], "rollbackkit status hung on a locked store"

    def broken(*_: object) -> None:
        raise KeyError("generation")

    monkeypatch.setattr(ops_replicas, "_publication", broken)
    with pytest.raises(KeyError):  # a bug, not 'the store does not answer'
        ops_replicas.published(served, "churn", "prod")
