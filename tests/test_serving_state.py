"""What serves an environment, and where a rollback goes: one answer, from the history.

Stories of an on-call engineer and the watchdog on the ``served`` project (v1.0.0 serving
prod, v1.1.0 registered): canaries, rollbacks, restarts and gate breaches never disagree
about what serves, never roll back onto the version serving, and never move traffic onto
a version a person or a gate rejected.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.errors import RollbackRefused
from rollbackkit.ops.runbooks import run
from rollbackkit.ops.traffic import rollback_target, rolled_back_from
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog

from .conftest import BIN, run_cli
from .servers import running_server


def _traffic(n: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    frame = churn_frame(n, seed=seed)
    if drifted:  # the tail segment explodes: scores move far from every reference
        frame["support_calls"] += 6
        frame["contract"] = "month-to-month"
    return frame[ALL_FEATURES]


def _send(environment: ServingEnvironment, frame: pd.DataFrame, prefix: str) -> None:
    for i in range(0, len(frame), 50):
        environment.predict(frame.iloc[i : i + 50], key=f"{prefix}-{i}")


def _log(repo: Path) -> PredictionLog:
    return PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")


def _labels_agree(environment: ServingEnvironment) -> None:
    """The router's slots carry the tags of the assignments the history says they serve under."""
    state = Deployments(environment.registry).state(environment.name, environment.env)
    routing = environment.router.state
    live, canary = routing.slot(routing.live), routing.slot(routing.canary)
    assert live is not None and state.live is not None
    assert (live.bundle.version, live.deployment) == (state.live.version, state.live.tag)
    if state.canary is None:
        assert canary is None
    else:
        assert canary is not None
        assert (canary.bundle.version, canary.deployment) == (state.canary.version, state.canary.tag)
        assert routing.percent == state.canary_percent


def test_a_first_version_is_evaluated_and_its_bake_completes(served: Path) -> None:
    """staging has never served anything: its first version has no fallback, but still bakes."""
    log = _log(served)
    try:
        environment = ServingEnvironment(served, "churn", "staging", log=log, bake_seconds=0.0)
        environment.start()
        environment.deploy("v1.0.0", reason="first release to staging")
        assert environment.router.state.standby is None  # nothing to fall back to
        # 1,000 rows: each of the default per-segment gates' segments (4 regions) needs 200
        _send(environment, _traffic(1000, seed=71), "first")
        environment.check_gates()
        assert environment.last_report is not None and environment.last_report["decision"] == "pass"
        staged = log.query("SELECT count(*) AS n FROM predictions_staging WHERE env = 'staging'")["n"][0]
        produced = log.production("churn").query("env == 'staging'")
        assert (staged, len(produced)) == (0, 1000)
        assert [e["event"] for e in environment.journal.entries()].count("bake-complete") == 1

        # A first version that fails its gates cannot roll back: the breach is recorded, traffic stays.
        qa = ServingEnvironment(served, "churn", "qa", log=log, bake_seconds=0.0)
        qa.deploy("v1.0.0", reason="first release to qa")
        _send(qa, _traffic(600, seed=72, drifted=True), "bad")
        assert qa.check_gates() is None
        assert qa.last_report is not None and qa.last_report["decision"] == "rollback"
        assert qa.last_report["rollback"].startswith("none: churn has no earlier version in qa")
        qa.check_gates()  # journaled once per deployment, not once per watchdog tick
        breaches = [e for e in qa.journal.entries() if e["event"] == "gate-breach" and e["env"] == "qa"]
        assert [(b["version"], b["rolled_back"]) for b in breaches] == [("v1.0.0", False)]
        assert qa.router.state.slot(qa.router.state.live).bundle.version == "v1.0.0"
    finally:
        log.close()


def test_what_serves_has_one_answer_while_a_canary_runs_and_after_a_restart(served: Path) -> None:
    from rollbackkit.ops.situation import preflight, situation
    from rollbackkit.widgets import TimelinePanel

    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.1.0", canary=20, reason="try v2 on a fifth")
    registry = Registry(served)
    assert registry.resolve("churn#prod").version == "v1.0.0"  # the canary does not serve prod
    state = Deployments(registry).state("churn", "prod")
    assert (state.version, state.canary.version, state.canary_percent) == ("v1.0.0", "v1.1.0", 20)
    assert Deployments(registry).serving("churn", "prod").version == "v1.0.0"
    assert preflight(served, "churn@v1.1.0").consumer == "churn@v1.0.0"  # what downstream receives now
    assert (situation(served, "churn", "prod").serving, situation(served, "churn", "prod").canary) == (
        "v1.0.0",
        "v1.1.0",
    )
    assert TimelinePanel("churn", "prod", registry).serving[-1][1] == "v1.0.0"
    _labels_agree(environment)

    restarted = ServingEnvironment(served, "churn", "prod")  # the process died; a new one starts
    restarted.start()
    status = restarted.status()
    assert status["live"]["version"] == "v1.0.0"
    assert (status["canary"]["version"], status["canary"]["percent"]) == ("v1.1.0", 20)  # resumed, same share
    _labels_agree(restarted)
    versions = {restarted.predict(_traffic(1, seed=i), key=f"user-{i}").version for i in range(60)}
    assert versions == {"v1.0.0", "v1.1.0"}
    restarted.promote(reason="looks good")
    assert registry.resolve("churn#prod").version == "v1.1.0"
    _labels_agree(restarted)


def test_rollbacks_never_land_on_the_version_already_serving(served: Path) -> None:
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    for cycle in range(3):
        environment.deploy("v1.1.0", reason=f"cycle {cycle}")
        environment.rollback(reason=f"cycle {cycle} went bad")
        _labels_agree(environment)
        routing = environment.router.state
        assert routing.slot(routing.live).bundle.version == "v1.0.0"
        with pytest.raises(RollbackRefused, match="already serves prod"):
            environment.rollback(reason="again", to="v1.0.0")
    history = Deployments(Registry(served)).history("churn", "prod")
    before = {b.tag: a.version for a, b in itertools.pairwise(history)}
    assert all(a.version != before[a.tag] for a in history if a.action == "rollback")

    # The workspace path (no server) applies the same rule, with a one-line refusal.
    refused = run_cli("rollback", "churn", "--env", "prod", "--to", "v1.0.0", "--reason", "x", cwd=served)
    assert refused.returncode == 1
    assert "already serves prod" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    nothing = run_cli("rollback", "churn", "--env", "prod", "--reason", "x", cwd=served)
    assert nothing.returncode == 1 and "--to VERSION" in nothing.stderr  # v1.1.0 was rolled back from
    assert "Traceback" not in refused.stderr + nothing.stderr


def test_a_second_rollback_never_brings_back_the_failed_canary(served: Path) -> None:
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.1.0", canary=20, reason="try v2")
    first = environment.rollback(reason="tail segment degraded")
    assert first["assignment"]["version"] == "v1.0.0"
    assert environment.router.state.standby.bundle.version == "v1.1.0"  # warm, but rejected
    with pytest.raises(RollbackRefused, match="no earlier version"):
        environment.rollback(reason="second click")
    routing = environment.router.state
    assert (routing.slot(routing.live).bundle.version, routing.canary) == ("v1.0.0", None)
    assert [a.action for a in Deployments(Registry(served)).history("churn", "prod")] == [
        "deploy",
        "canary",
        "rollback",
    ]


def test_a_second_rollback_through_the_server_is_refused_and_a_restart_resumes_the_canary(served: Path) -> None:
    admin = {"ROLLBACKKIT_ADMIN_TOKEN": "test-admin-token"}
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        started = run_cli(
            "deploy", "churn@v1.1.0", "--env", "prod", "--canary", "25", "--reason", "v2", cwd=served, env=admin
        )
        assert started.returncode == 0, started.stderr
    with running_server(served, "churn", "prod", watchdog=3600) as server:  # restarted mid-canary
        status = server.status()
        assert (status["canary"]["version"], status["canary"]["percent"]) == ("v1.1.0", 25)
        first = run_cli("rollback", "churn", "--env", "prod", "--reason", "bad tail", cwd=served, env=admin)
        assert first.returncode == 0, first.stderr
        second = run_cli("rollback", "churn", "--env", "prod", "--reason", "again", cwd=served, env=admin)
        assert second.returncode == 1 and "no earlier version" in second.stderr, second.stdout
        status = server.status()
        assert (status["live"]["version"], status["canary"]) == ("v1.0.0", None)
        assert status["live"]["deployment"] == Deployments(Registry(served)).state("churn", "prod").live.tag


def test_the_watchdog_never_moves_traffic_onto_a_version_a_person_rolled_back_from(served: Path) -> None:
    """Live v1.1.0; the operator rolls back to v1.0.0; v1.0.0 then breaches a gate, also after a restart."""
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.1.0", reason="boosted model")
    environment.rollback(reason="operator: complaints", incident="INC-18")
    _send(environment, _traffic(600, seed=81, drifted=True), "drifted")
    assert environment.check_gates() is None
    assert environment.last_report["decision"] == "rollback"

    restarted = ServingEnvironment(served, "churn", "prod")  # the in-memory view is gone
    restarted.start()
    _send(restarted, _traffic(600, seed=82, drifted=True), "drifted-again")
    assert restarted.check_gates() is None
    assert restarted.last_report["decision"] == "rollback" and restarted.last_report["rollback"].startswith("none")
    routing = restarted.router.state
    assert routing.slot(routing.live).bundle.version == "v1.0.0"
    history = Deployments(Registry(served)).history("churn", "prod")
    assert [a.action for a in history] == ["deploy", "deploy", "rollback"]
    assert Deployments(Registry(served)).state("churn", "prod").rolled_back_from == {"v1.1.0"}

    # Deployed anew, v1.1.0 is evaluated like any version again (and v1.0.0 is its fallback).
    restarted.deploy("v1.1.0", reason="fixed upstream")
    state = Deployments(Registry(served)).state("churn", "prod")
    assert (state.version, state.rolled_back_from, state.fallback) == ("v1.1.0", frozenset(), "v1.0.0")


def test_the_live_deployment_label_follows_every_assignment(served: Path) -> None:
    log = _log(served)
    try:
        environment = ServingEnvironment(served, "churn", "prod", log=log)
        environment.start()
        steps = [
            lambda: environment.deploy("v1.1.0", reason="full"),
            lambda: environment.rollback(reason="back"),
            lambda: environment.deploy("v1.1.0", canary=30, reason="canary"),
            lambda: environment.promote(reason="good"),
            lambda: environment.rollback(reason="back again", to="v1.0.0"),
            lambda: environment.deploy("v1.1.0", canary=40, reason="canary again"),
            lambda: environment.rollback(reason="cancel"),
            lambda: environment.deploy("v1.1.0", reason="full again"),
            lambda: environment.rollback(reason="and back"),
            lambda: environment.deploy("v1.1.0", canary=10, reason="last canary"),
            lambda: environment.promote(reason="done"),
        ]
        for i, step in enumerate(steps):
            step()
            _labels_agree(environment)
            routing = environment.router.state
            for slot in (routing.slot(routing.live), routing.slot(routing.canary)):
                if slot is not None:
                    assert log.knows(slot.deployment), (i, slot.deployment)
            environment.predict(_traffic(5, seed=90 + i), key=f"step-{i}")
        log.flush()
        status = environment.status()
        assert status["live"]["deployment"] == "churn#prod#12"  # the 11th assignment after the first release
        last = log.query("SELECT deployment FROM predictions_production WHERE name = 'churn' ORDER BY time DESC")
        assert last["deployment"][0] == "churn#prod#12"
    finally:
        log.close()


def test_the_rollback_runbook_after_a_manual_rollback_records_what_happened(logged: Path) -> None:
    """logged: v2 canary rolled back by hand. The runbook then finds it done, and names v1.1.0 bad."""
    assert rollback_target(logged, "churn", "prod") == "v1.0.0"
    assert rolled_back_from(logged, "churn", "prod", "v1.0.0") == "v1.1.0"
    result = run(
        "rollback",
        {"name": "churn", "env": "prod", "reason": "after the manual rollback", "dry_run": True},
        repo=logged,
    )
    assert (result.status, result.verdict) == ("ok", "already-rolled-back"), result.error
    assert (result.results["target"], result.results["bad_version"]) == ("v1.0.0", "v1.1.0")


def test_the_rollback_runbook_hint_names_its_own_parameter(served: Path) -> None:
    """Only v1.0.0 ever served: nothing to roll back to, and the hint says what to type here."""
    result = run("rollback", {"name": "churn", "env": "prod", "reason": "nothing before"}, repo=served)
    assert result.status == "failed"
    assert "-p to_version=VERSION" in result.error and "--to" not in result.error


def test_the_explore_notebook_names_the_good_version_and_writes_nothing(logged: Path) -> None:
    """After v1.1.0 failed and was rolled back, the notebook names v1.0.0 as the rollback target
    (never the newest version) and prepares the runbook without running it: executing the whole
    notebook adds no journal record and no audit notebook."""
    source = Path(__file__).parent.parent / "notebooks" / "explore.ipynb"
    out = logged.parent / "explore-out.ipynb"
    journal = Registry(logged).paths.journal
    before = len(list(Journal(journal).entries())), sorted((logged / "audit").rglob("*.ipynb"))
    done = subprocess.run(
        [str(BIN / "papermill"), str(source), str(out), "-k", "rollbackkit", "-p", "repo", str(logged)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=source.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = [o for c in nbformat.read(str(out), 4).cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert "Rollback target: churn@v1.0.0 (from v1.1.0)" in "".join(o.get("text", "") for o in outputs)
    assert (len(list(Journal(journal).entries())), sorted((logged / "audit").rglob("*.ipynb"))) == before


def test_a_gate_verdict_never_moves_traffic_after_an_operator_moved_it(served: Path) -> None:
    """The watchdog judged v1.1.0 bad; before it acts, the operator deploys v1.0.0 again. The
    verdict was about v1.1.0: traffic stays on v1.0.0, and no automatic rollback lands on v1.1.0."""
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.1.0", reason="boosted model")
    _send(environment, _traffic(600, seed=83, drifted=True), "drifted")
    find_target = environment.deployments.rollback_target
    acted: list[str] = []

    def the_operator_acts_meanwhile(*args: Any, **kwargs: Any) -> Any:
        """Between the verdict and the shift: the operator's deploy lands first."""
        if not acted:
            acted.append("deploy")
            environment.deploy("v1.0.0", reason="operator: back to the known good", force=True)
        return find_target(*args, **kwargs)

    environment.deployments.rollback_target = the_operator_acts_meanwhile  # type: ignore[method-assign]
    assert environment.check_gates() is None
    assert environment.last_report is not None and environment.last_report["decision"] == "rollback"
    history = Deployments(Registry(served)).history("churn", "prod")
    assert [(a.action, a.version) for a in history][-2:] == [("deploy", "v1.1.0"), ("deploy", "v1.0.0")]
    routing = environment.router.state
    assert routing.slot(routing.live).bundle.version == "v1.0.0"


def test_the_rollback_runbook_after_a_manual_rollback_never_rolls_back_the_restored_version(served: Path) -> None:
    """Three versions served in turn; the operator rolled v1.2.0 back to v1.1.0 by hand. The
    runbook then records that rollback; it does not roll v1.1.0 back to v1.0.0 too."""
    from rollbackkit.demo.data import TARGET, churn_pipeline
    from rollbackkit.ops.traffic import deploy as deploy_offline
    from rollbackkit.ops.traffic import rollback as rollback_offline

    churn = churn_frame(1500, seed=84)
    model = churn_pipeline(ALL_FEATURES, seed=7).fit(churn[ALL_FEATURES], churn[TARGET])  # type: ignore[attr-defined]
    Registry(served).register("churn", model, churn[[*ALL_FEATURES, TARGET]], target=TARGET)
    deploy_offline(served, "churn@v1.1.0", "prod", reason="boosted model")
    deploy_offline(served, "churn@v1.1.1", "prod", reason="fewer rounds")
    rollback_offline(served, "churn", "prod", reason="operator: scores look off")
    assert rollback_target(served, "churn", "prod") == "v1.1.0"
    assert rolled_back_from(served, "churn", "prod", "v1.1.0") == "v1.1.1"
    result = run("rollback", {"name": "churn", "env": "prod", "reason": "after the manual rollback"}, repo=served)
    assert (result.status, result.verdict) == ("ok", "already-rolled-back"), result.error
    assert (result.results["target"], result.results["bad_version"]) == ("v1.1.0", "v1.1.1")
    assert Deployments(Registry(served)).state("churn", "prod").version == "v1.1.0"
