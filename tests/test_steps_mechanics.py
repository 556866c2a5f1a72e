"""Stepped rollouts, mechanically: a canary that moves 5 -> 25 -> 50 -> promote, each step an assignment.

The environment is driven in-process with a real prediction log (DuckDB) and real git tags;
the watchdog's decision to advance is :meth:`ServingEnvironment.advance` called as the
watchdog would, with the routing generation its evaluation saw.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.errors import InvalidInput, RoutingError, Superseded
from rollbackkit.registry.assignments import Deployments
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.routing_state import in_canary


def _log(repo: Path) -> PredictionLog:
    return PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")


def _send(environment: ServingEnvironment, prefix: str, requests: int = 40) -> dict[str, str]:
    """``requests`` keyed requests of 5 rows; returns key -> the version that answered."""
    live = churn_frame(requests * 5, seed=7)[ALL_FEATURES]
    return {
        f"{prefix}-{i}": environment.predict(live.iloc[i * 5 : i * 5 + 5], key=f"{prefix}-{i}").version
        for i in range(requests)
    }


def _advance(environment: ServingEnvironment, reason: str) -> dict:
    return environment.advance(unless_changed_since=environment.router.state.generation, reason=reason)


def test_a_stepped_rollout_moves_5_25_50_then_promotes_each_step_in_the_history(served: Path) -> None:
    log = _log(served)
    try:
        environment = ServingEnvironment(served, "churn", "prod", log=log)
        environment.start()
        answer = environment.deploy("v1.1.0", steps=[5, 25, 50, 100], bake_s=120, reason="stepped v2")
        assert answer["assignment"]["action"] == "canary" and answer["assignment"]["canary_percent"] == 5
        assert answer["status"]["canary"]["percent"] == 5
        first = environment.router.state.slot(environment.router.state.canary)
        assert first is not None
        assert time.monotonic() - environment.step_started(first.deployment) < 60
        at_5 = {k for k, v in _send(environment, "user").items() if v == "v1.1.0"}

        assert _advance(environment, "step 1 baked")["assignment"]["canary_percent"] == 25
        at_25 = {k for k, v in _send(environment, "user").items() if v == "v1.1.0"}
        assert at_5 <= at_25  # the sticky rule holds through a resize: nobody flips back
        assert at_25 == {k for k in at_25 if in_canary(k, 25)}
        assert _advance(environment, "step 2 baked")["assignment"]["canary_percent"] == 50
        _send(environment, "user")
        promoted = _advance(environment, "step 3 baked")
        assert promoted["assignment"]["action"] == "promote"
        assert promoted["status"]["live"]["version"] == "v1.1.0" and promoted["status"]["canary"] is None
        with pytest.raises(RoutingError, match="No stepped canary"):
            _advance(environment, "nothing left")
        environment.stop()

        history = Deployments(environment.registry).history("churn", "prod")[-4:]
        assert [(a.action, a.canary_percent) for a in history] == [
            ("canary", 5),
            ("canary", 25),
            ("canary", 50),
            ("promote", None),
        ]
        assert all(a.steps == (5, 25, 50, 100) and a.bake_s == 120 for a in history[:3])
        assert {a.actor for a in history[1:]} == {"watchdog"}
        # every step's staged rows reached production with the promotion; none stays staged
        staged = log.query("SELECT count(*) AS n FROM predictions_staging WHERE version = 'v1.1.0'")["n"][0]
        production = log.query("SELECT count(*) AS n FROM predictions WHERE version = 'v1.1.0'")["n"][0]
        assert staged == 0 and production > 0
    finally:
        log.close()


def test_a_restart_resumes_the_current_step_and_a_rollback_at_25_cancels_the_canary(served: Path) -> None:
    log = _log(served)
    try:
        first = ServingEnvironment(served, "churn", "prod", log=log)
        first.start()
        first.deploy("v1.1.0", steps=[5, 25, 50, 100], bake_s=600)
        at_25 = _advance(first, "step 1 baked")["assignment"]
        first.stop()

        time.sleep(3)  # the resumed step began at its tag's time, not at the restart
        again = ServingEnvironment(served, "churn", "prod", log=log)
        restarted = time.monotonic()
        again.start()
        state = again.router.state
        canary = state.slot(state.canary)
        assert canary is not None and canary.deployment == at_25["tag"] and state.percent == 25
        assert restarted - again.step_started(at_25["tag"]) >= 0.5  # (tag times have one-second steps)
        assert _advance(again, "step 2 baked")["assignment"]["canary_percent"] == 50  # the plan survived too

        with pytest.raises(Superseded):
            again.advance(unless_changed_since=again.router.state.generation - 1, reason="a stale verdict")
        back = again.rollback(reason="breach at 50", actor="watchdog", automatic=True, gates="errors")
        assert back["assignment"]["version"] == "v1.0.0"
        assert back["status"]["canary"] is None and back["status"]["live"]["version"] == "v1.0.0"
        assert set(_send(again, "after").values()) == {"v1.0.0"}
        with pytest.raises(RoutingError, match="No stepped canary"):
            _advance(again, "the rollout is over")
        again.stop()
        state_after = Deployments(again.registry).state("churn", "prod")
        assert state_after.canary is None and "v1.1.0" in state_after.rolled_back_from
    finally:
        log.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": [25, 5, 100]}, "strictly increasing"),
        ({"steps": [5, 25, 50]}, "last step must be 100"),
        ({"steps": [100]}, "at least two steps"),
        ({"steps": [0, 100]}, "percent from 1 to 100"),
        ({"steps": [5, 100], "canary": 5}, "one of canary, shadow or steps"),
        ({"shadow": 50, "canary": 10}, "one of canary, shadow or steps"),
        ({"shadow": 0}, "percent from 1 to 100"),
        ({"bake_s": 60.0}, "stepped rollout only"),
        ({"steps": [5, 100], "bake_s": -1.0}, "not a duration"),
    ],
)
def test_a_rollout_that_does_not_make_sense_is_refused_in_one_line_before_anything_moves(
    served: Path, options: dict, message: str
) -> None:
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    before = (environment.router.state, len(Deployments(environment.registry).history("churn", "prod")))
    with pytest.raises(InvalidInput, match=message) as refused:
        environment.deploy("v1.1.0", **options)
    assert "\n" not in refused.value.message
    assert (environment.router.state, len(Deployments(environment.registry).history("churn", "prod"))) == before
    with pytest.raises(InvalidInput, match="only from a shadow"):
        environment.promote(canary=10)
