"""GET /analysis on a busy day, on a regressor (diabetes: float answers) served in this process.

A burst of controllers polling while the gates are slow to evaluate costs one evaluation and
never holds up ``/predict``; a version rolled back and deployed again is judged on its new
deployment, never on the watchdog's report about the old one; an answer JSON cannot hold is a
one-line 503; a version rolled back is a ``rollback``, not a 404; a bad version, an unknown
route or method is one short line. The app runs over httpx's ASGI transport (no socket: the thread pools and the
event loop are the server's own).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from rollbackkit.serving.app import create_app
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.verdict import Verdict, Verdicts

from .asyncs import run_async
from .servers import TOKEN
from .story import Case, build_project, records
from .test_matrix import pipeline

CASE = Case("diabetes-regressor", "diabetes", "float", regressor=True)
SLOW_S = 2.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Iterator[tuple[ServingEnvironment, Any]]:
    """``model@v1.0.0`` (a regressor) live in prod, served in this process with ``model@v1.1.0`` a 50% canary."""
    root = tmp_path_factory.mktemp("analysis-load")
    fit = lambda X, y, n: pipeline(CASE, list(X.columns[:6]), n).fit(X, y)  # noqa: E731
    repo, live = build_project(root, fit, CASE, rounds=(5, 10))
    env = ServingEnvironment(repo, "model", "prod")
    env.start()
    env.deploy("v1.1.0", canary=50, features=live.iloc[:300], reason="try it")
    yield env, live
    env.stop()


def day(env: ServingEnvironment, *calls: tuple[str, str, dict[str, Any] | None]) -> list[httpx.Response]:
    """The calls made at once against the app (one event loop, as one server)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(env, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://in", timeout=60) as client:
            return list(await asyncio.gather(*(client.request(m, p, json=b) for m, p, b in calls)))

    return run_async(run())


def predict(frame: pd.DataFrame, key: str) -> tuple[str, str, dict[str, Any]]:
    return ("POST", "/predict", {"records": records(frame), "key": key})


def test_a_burst_of_polls_during_a_slow_evaluation_costs_one_and_predict_stays_fast(
    served: tuple[ServingEnvironment, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, live = served
    evaluated = Verdicts._evaluated
    judged: list[float] = []

    def slow(self: Verdicts, *args: Any) -> Verdict:
        judged.append(time.monotonic())
        time.sleep(SLOW_S)  # a slow store, a big window
        return evaluated(self, *args)

    monkeypatch.setattr(Verdicts, "_evaluated", slow)
    app = create_app(env, TOKEN)
    latencies: list[float] = []

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in", timeout=60) as client:
            polls = [asyncio.create_task(client.get("/analysis", params={"version": "v1.1.0"})) for _ in range(50)]
            await asyncio.sleep(0.3)  # the burst holds every thread it can get
            answers = []
            for i in range(5):
                began = time.perf_counter()
                answers.append(await client.post("/predict", json={"records": records(live.iloc[i : i + 20])}))
                latencies.append(time.perf_counter() - began)
            return answers, list(await asyncio.gather(*polls))

    predicted, polled = run_async(run())
    assert all(p.status_code == 200 for p in predicted)
    assert all(isinstance(a["prediction"], float) for a in predicted[0].json()["predictions"])  # a regressor
    assert max(latencies) < SLOW_S / 2, latencies  # /predict never queued behind the polls
    assert len(judged) == 1, judged  # fifty polls, one evaluation
    assert {p.status_code for p in polled} == {200} and len({p.json()["evaluated_at"] for p in polled}) == 1


def test_a_version_deployed_again_is_judged_on_its_new_deployment(
    served: tuple[ServingEnvironment, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, live = served
    day(env, *(predict(live.iloc[i : i + 50], f"first-{i}") for i in range(0, 600, 50)))
    env.check_gates()  # the watchdog's evaluation (it acts on nothing here: the canary passes or waits)
    first = day(env, ("GET", "/analysis", None))[0].json()
    old, slot = first["deployment"], env.router.state.canary
    assert first["source"] == "watchdog" and first["n"] > 0 and first["version"] == "v1.1.0", first

    env.rollback(reason="try it again")
    # No longer served, but rolled back: Argo's failureCondition and a failed Flagger check, never a 404 (an Error).
    flagger = {"name": "diabetes", "namespace": "models", "phase": "Progressing", "metadata": {"version": "v1.1.0"}}
    gone, check = day(env, ("GET", "/analysis?version=model@v1.1.0", None), ("POST", "/analysis/flagger", flagger))
    rollback = env.deployments.history("model", "prod")[-1]
    assert gone.status_code == 200 and check.status_code == 412, (gone.text, check.text)
    said = gone.json()
    assert said["decision"] == "rollback" and said["failed"] and said["source"] == "history", said
    assert said["role"] == "rolled-back" and said["deployment"] == old and said["evaluated_at"] == rollback.time
    assert rollback.tag in said["reason"] and rollback.time in said["reason"], said["reason"]
    env.deploy("v1.1.0", canary=50, features=live.iloc[:300], reason="second try")
    again = day(env, ("GET", "/analysis", None))[0].json()
    assert env.router.state.canary == slot and again["deployment"] != old  # same version, same slot, a new tag
    assert again["deployment"] == env.router.state.slot(slot).deployment, again  # type: ignore[union-attr]
    assert again["source"] == "evaluated", again  # the watchdog's report is about the old tag

    # A verdict JSON cannot hold (a value that slipped past json_safe) is a one-line 503, never a plain-text 500.
    monkeypatch.setattr(Verdict, "to_dict", lambda self: {"decision": "pass", "value": math.nan})
    broken = day(env, ("GET", "/analysis?version=v1.0.0", None))[0]
    assert broken.status_code == 503 and set(broken.json()) == {"error", "hint"}, broken.text


def test_a_bad_version_an_unknown_route_or_method_is_one_short_line(
    served: tuple[ServingEnvironment, pd.DataFrame],
) -> None:
    env, _ = served
    huge = {"name": "diabetes", "namespace": "models", "phase": "Progressing", "metadata": {"version": "v" * 5_000_000}}
    answers = day(
        env,
        ("GET", "/analysis?version=" + "x" * 60_000, None),
        ("POST", "/analysis/flagger", huge),
        ("GET", "/analysis?version=v1.0.0&version=v1.1.0", None),
        ("GET", "/analysis?version=diab@v1.0.0", None),
        ("POST", "/metrics", None),
        ("GET", "/predict", None),
        ("GET", "/nowhere", None),
    )
    assert [a.status_code for a in answers] == [400, 400, 400, 404, 405, 405, 404], [a.text[:200] for a in answers]
    for answer in answers:
        said = answer.json()
        assert set(said) == {"error", "hint"} and len(answer.content) < 400, answer.text[:500]
        assert "\n" not in said["error"] + said["hint"], said
    assert "(5000000 characters)" in answers[1].json()["error"]
    assert "serves model" in answers[3].json()["error"]
    assert set(answers[4].headers["allow"].split(", ")) == {"GET", "HEAD"}, answers[4].headers
    assert "POST '/metrics'" in answers[4].json()["error"]
