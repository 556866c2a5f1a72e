"""Argo Rollouts and Flagger ask a real server for a version's gate verdict, with the README's own YAML.

A wine model with string classes: ``model@v1.0.0`` live in prod, ``model@v1.1.0`` a 50% canary
(gated on errors and a segment-drift slice). The README's AnalysisTemplate (its jsonPath through
jsonpath-ng, its successCondition and failureCondition) and its Flagger Canary (each webhook's
payload, Flagger's 2xx rule) are run against the endpoint while the canary has no traffic
(inconclusive), healthy traffic (passes) and a degraded segment (fails). The watchdog's interval
is an hour: nothing but the endpoint judges, and the endpoint never acts.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonpath_ng
import pandas as pd
import pytest
import yaml

from rollbackkit.analysis.gates import GateReport, GateResult
from rollbackkit.serving.verdict import FRESH_S, StillEvaluating, Verdict, Verdicts, flagger_status

from .conftest import copy_project
from .servers import Server, running_server
from .story import cli, degraded, send, wait
from .test_matrix import MATRIX, template

CASE = MATRIX["multiclass-string-labels"]  # wine, string classes: test_matrix's project, built once per run
README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass
class Served:
    server: Server
    repo: Path
    live: pd.DataFrame
    numeric: list[str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, pd.DataFrame]:
    """``model@v1.0.0`` live in prod, ``model@v1.1.0`` registered; built once per run, copied per server."""
    return template(CASE, tmp_path_factory)


@contextmanager
def canary_served(built: tuple[Path, pd.DataFrame], root: Path, watchdog: float) -> Iterator[Served]:
    """A copy of the project served, ``model@v1.1.0`` a 50% canary with no traffic yet."""
    template, live = built
    shutil.copy(template.parent / "features.py", root / "features.py")
    repo = copy_project(template, root)
    features = root / "live.parquet"
    live.iloc[:500].to_parquet(features)
    with running_server(repo, "model", "prod", watchdog=watchdog) as server:
        cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--canary", "50", "--features", str(features))
        yield Served(server, repo, live, list(live.columns[:6]))


@pytest.fixture(scope="module")
def served(built: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The canary on a server whose watchdog waits an hour: only the endpoint judges."""
    with canary_served(built, tmp_path_factory.mktemp("served"), watchdog=3600) as served:
        yield served


# --------------------------------------------------------------------------- the README's YAML, read as controllers do
def readme_yaml(kind: str) -> dict[str, Any]:
    """The ``kind`` document among the YAML blocks of README's "Argo Rollouts and Flagger" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Argo Rollouts and Flagger\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    documents = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    return next(d for d in documents if d.get("kind") == kind)


def condition(expression: str, result: Any) -> bool:
    """Argo's expr for the README's exact forms: ``result == "x"`` joined by ``||`` (anything else fails the test)."""
    terms = [t.strip() for t in expression.split("||")]
    matched = [re.fullmatch(r'result == "([^"]*)"', t) for t in terms]
    assert all(matched), f"the test's evaluator does not know {expression!r}"
    return any(result == m.group(1) for m in matched if m)


def argo_phase(url: str, version: str) -> tuple[str, dict[str, Any]]:
    """What Argo Rollouts' web provider makes of the endpoint's answer: Successful, Failed or Inconclusive."""
    metric = readme_yaml("AnalysisTemplate")["spec"]["metrics"][0]
    web = metric["provider"]["web"]
    asked = urlsplit(web["url"].replace("{{args.version}}", version))
    response = httpx.get(f"{url}{asked.path}?{asked.query}", timeout=60)
    assert response.status_code == 200, response.text  # any other status is an Argo Error, never a verdict
    body = response.json()
    path = web["jsonPath"]
    assert path.startswith("{") and path.endswith("}"), path  # Kubernetes' JSONPath template braces
    found = [match.value for match in jsonpath_ng.parse(path[1:-1]).find(body)]
    assert len(found) == 1, (path, body)
    if condition(metric["failureCondition"], found[0]):
        return "Failed", body
    return ("Successful" if condition(metric["successCondition"], found[0]) else "Inconclusive"), body


def flagger_calls(url: str) -> list[httpx.Response]:
    """Each webhook of the README's Canary, called with the payload Flagger sends."""
    canary = readme_yaml("Canary")
    hooks = canary["spec"]["analysis"]["webhooks"]
    assert {h["type"] for h in hooks} == {"rollout", "confirm-promotion"}
    calls = []
    for hook in hooks:
        payload = {
            "name": canary["metadata"]["name"],
            "namespace": canary["metadata"]["namespace"],
            "phase": "Progressing",
            "checksum": "85d557f47b",
            "metadata": hook.get("metadata", {}),
        }
        calls.append(httpx.post(f"{url}{urlsplit(hook['url']).path}", json=payload, timeout=60))
    return calls


def advanced(calls: list[httpx.Response]) -> bool:
    """Flagger's rule: 200-202 advances, anything else is a failed check."""
    return all(200 <= c.status_code <= 202 for c in calls)


# --------------------------------------------------------------------------- the day
def test_argo_and_flagger_read_the_canarys_verdict_from_the_readme_yaml(served: Served) -> None:
    url, repo = served.server.url, served.repo
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    entries = journal.read_text().count("\n")

    # No traffic yet: neither condition holds, Argo pauses; Flagger counts a failed check.
    phase, body = argo_phase(url, "v1.1.0")
    assert phase == "Inconclusive" and body["inconclusive"] and body["n"] == 0, body
    assert body["role"] == "canary" and body["source"] == "evaluated", body
    calls = flagger_calls(url)
    assert [c.status_code for c in calls] == [412, 412] and not advanced(calls)
    assert calls[0].json()["decision"] == "inconclusive"

    # Healthy traffic: the canary passes its gates, each with its value and bound.
    send(url, served.live.iloc[:1600], "healthy")
    phase, body = wait(lambda: _decided(url, "v1.1.0"), 30, "a decided verdict")
    assert phase == "Successful" and body["passed"] and not body["failed"], body
    assert {g["name"] for g in body["gates"]} == {"errors", "segment-drift"}
    assert all(g["status"] == "pass" and g["message"] for g in body["gates"]), body["gates"]
    assert advanced(flagger_calls(url))

    # One segment degrades: the failure condition holds, Flagger gets a 412 saying why.
    send(url, degraded(served.live.iloc[1600:3600], served.numeric), "degraded")
    phase, body = wait(lambda: _failed(url), 30, "the failing verdict")
    assert body["decision"] == "rollback" and "segment-drift" in body["reason"], body
    failing = next(g for g in body["gates"] if g["name"] == "segment-drift")
    assert failing["status"] == "fail" and failing["value"] > failing["threshold"]["max"], failing
    calls = flagger_calls(url)
    assert {c.status_code for c in calls} == {412} and calls[0].json()["failed"] is True

    # Asked again and again, the endpoint never acts: the failing canary still serves, the journal is unchanged.
    for _ in range(10):
        assert httpx.get(f"{url}/analysis", params={"version": "model@v1.1.0"}, timeout=60).json()["failed"]
        flagger_calls(url)
    status = served.server.status()
    assert status["canary"]["version"] == "v1.1.0" and status["live"]["version"] == "v1.0.0"
    assert journal.read_text().count("\n") == entries
    history = cli(repo, "history", "model", "--env", "prod")["assignments"]
    assert history[-1]["action"] == "canary" and history[-1]["version"] == "v1.1.0", history[-1]


def _decided(url: str, version: str) -> tuple[str, dict[str, Any]] | None:
    phase, body = argo_phase(url, version)
    return (phase, body) if not body["inconclusive"] else None


def _failed(url: str) -> tuple[str, dict[str, Any]] | None:
    phase, body = argo_phase(url, "v1.1.0")
    return (phase, body) if phase == "Failed" else None


def test_a_fresh_watchdog_report_is_the_verdict_on_a_server_that_watches(
    built: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    with canary_served(built, tmp_path, watchdog=0.3) as watched:
        send(watched.server.url, watched.live.iloc[:1200], "healthy")

        def from_the_watchdog() -> dict[str, Any] | None:
            body = httpx.get(f"{watched.server.url}/analysis", timeout=60).json()  # the canary by default
            return body if body["source"] == "watchdog" and body["n"] > 0 else None

        body = wait(from_the_watchdog, 30, "the watchdog's report as the verdict")
        assert body["version"] == "v1.1.0" and body["passed"], body
        made = datetime.fromisoformat(body["evaluated_at"])
        assert timedelta(0) <= datetime.now(UTC) - made <= timedelta(seconds=FRESH_S), body["evaluated_at"]
        status = watched.server.status()
        assert status["gates"]["version"] == "model@v1.1.0" and "evaluated_at" in status["gates"], status["gates"]
        assert status["canary"]["version"] == "v1.1.0"  # a passing canary holds: nothing promoted


# --------------------------------------------------------------------------- refusals
def test_a_version_not_served_is_a_404_naming_what_is(served: Served) -> None:
    response = httpx.get(f"{served.server.url}/analysis", params={"version": "v9.9.9"}, timeout=30)
    assert response.status_code == 404
    said = response.json()
    assert set(said) == {"error", "hint"} and "\n" not in said["error"]
    assert "model@v9.9.9" in said["error"] and "v1.0.0 (live)" in said["error"] and "v1.1.0 (canary)" in said["error"]
    flagger = {"name": "churn", "namespace": "models", "phase": "Progressing", "metadata": {"version": "v9.9.9"}}
    assert httpx.post(f"{served.server.url}/analysis/flagger", json=flagger, timeout=30).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"namespace": "models", "phase": "Progressing"}',
        b'{"name": "churn", "namespace": "models", "phase": "Progressing", "metadata": {"version": 3}}',
    ],
    ids=["not-json", "not-an-object", "no-name", "metadata-not-strings"],
)
def test_a_payload_that_is_not_flaggers_is_a_400_in_one_line(served: Served, body: bytes) -> None:
    response = httpx.post(f"{served.server.url}/analysis/flagger", content=body, timeout=30)
    assert response.status_code == 400, response.text
    said = response.json()
    assert set(said) == {"error", "hint"} and "\n" not in said["error"] + said["hint"], said


def test_no_token_is_needed_and_a_newer_flaggers_fields_are_ignored(served: Served) -> None:
    payload = {"name": "churn", "namespace": "models", "phase": "Progressing", "metadata": {}, "newField": 1}
    response = httpx.post(f"{served.server.url}/analysis/flagger", json=payload, timeout=30)
    assert response.status_code in (200, 412) and response.json()["version"] == "v1.1.0"  # the canary by default
    paths = httpx.get(f"{served.server.url}/openapi.json", timeout=30).json()["paths"]
    assert "get" in paths["/analysis"] and "post" in paths["/analysis/flagger"]


# --------------------------------------------------------------------------- the watchdog's report and the cache
def stub(deployment: str = "model#prod#7", report: dict[str, Any] | None = None) -> SimpleNamespace:
    """An environment whose canary (green, ``model@v1.1.0``) is ``deployment``; ``report``: its watchdog's last."""
    slot = SimpleNamespace(name="green", deployment=deployment, bundle=SimpleNamespace(version="v1.1.0"))
    state = SimpleNamespace(canary="green", shadow=None, live="blue", slot=lambda n: slot if n == "green" else None)
    state.roles = lambda: {"live": None, "canary": slot, "shadow": None, "standby": None}
    return SimpleNamespace(
        name="model", env="prod", router=SimpleNamespace(state=state), last_report=report, log=object()
    )


def watchdog_report(deployment: str = "model#prod#7", **changed: Any) -> dict[str, Any]:
    """The watchdog's fresh report about ``deployment``: ``errors`` failing, 300 rows."""
    gate = {"name": "errors", "kind": "error_rate", "severity": "critical", "status": "fail", "observed": 0.2}
    gate |= {"threshold": {"max": 0.05}, "evidence": {}, "failure_limit": 1}
    report = {"version": "model@v1.1.0", "slot": "green", "deployment": deployment, "n": 300, "decision": "rollback"}
    return report | {"evaluated_at": datetime.now(UTC).isoformat(), "gates": [gate]} | changed


class Judged(Verdicts):
    """Counts the evaluations made here (each a slow pass, or ``error`` raised), the watchdog's report aside."""

    def __init__(self, env: Any, seconds: float = 0.0, error: Exception | None = None, **options: Any) -> None:
        super().__init__(env, **options)
        self.seconds, self.error, self.judged = seconds, error, 0

    def _evaluated(self, state: Any, role: str, slot: Any) -> Verdict:
        self.judged += 1
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        return Verdict("model", "prod", "v1.1.0", role, slot.deployment, "pass", "pass", 0, "now", "evaluated", ())


def test_a_fresh_watchdog_report_is_the_answer_and_a_verdict_is_kept_two_seconds() -> None:
    env = stub(report=watchdog_report())
    now = [0.0]
    verdicts = Judged(env, clock=lambda: now[0])
    first = verdicts.verdict("v1.1.0")
    assert first.source == "watchdog" and first.failed and first.evaluated_at == env.last_report["evaluated_at"]
    assert first.gates[0].value == 0.2 and "0.05" in first.gates[0].message
    now[0] = 0.5
    assert verdicts.verdict(None) is first  # within two seconds: the same answer, nothing judged
    env.last_report = watchdog_report(evaluated_at=(datetime.now(UTC) - timedelta(seconds=60)).isoformat())
    now[0] = 5.0
    assert verdicts.verdict("v1.1.0").source == "evaluated" and verdicts.judged == 1  # a stale report: judged


def test_a_redeploy_of_the_same_version_never_answers_the_old_deployments_report() -> None:
    # model@v1.1.0 was rolled back from model#prod#7 and deployed again into the same slot as model#prod#9
    verdicts = Judged(stub("model#prod#9", watchdog_report("model#prod#7")))
    found = verdicts.verdict("v1.1.0")
    assert found.source == "evaluated" and found.deployment == "model#prod#9" and found.n == 0, found
    assert Judged(stub("model#prod#9", watchdog_report("model#prod#9"))).verdict().source == "watchdog"


@pytest.mark.parametrize(
    "report",
    [
        watchdog_report(decision="pass", paused="evaluation failed: ConnectionError: the log is unreachable"),
        watchdog_report(gates=[{"name": "errors", "status": "pass"}]),  # an older leader's report: fields missing
        watchdog_report(decision="insufficient"),  # a watchdog that never evaluated once
    ],
    ids=["its-last-evaluation-raised", "gates-it-cannot-rebuild", "no-decision"],
)
def test_a_report_the_watchdog_cannot_stand_behind_is_evaluated_again(report: dict[str, Any]) -> None:
    verdicts = Judged(stub(report=report))
    assert verdicts.verdict().source == "evaluated" and verdicts.judged == 1


def test_a_burst_of_polls_costs_one_evaluation_per_deployment_and_its_failure_is_kept() -> None:
    failing = Judged(stub(report=None), seconds=0.2, error=ConnectionError("the log is unreachable"))
    errors: list[BaseException] = []

    def poll(verdicts: Verdicts) -> None:
        try:
            verdicts.verdict()
        except ConnectionError as exc:
            errors.append(exc)

    began = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        list(pool.map(poll, [failing] * 50))
    assert failing.judged == 1 and len(errors) == 50, failing.judged  # the failure answered to all, kept 2 s
    assert time.monotonic() - began < 2.0

    # Two deployments (a canary and live, polled by two templates) evaluate side by side, not in turn.
    both = Judged(stub(report=None), seconds=0.5)
    live = Judged(stub("model#prod#3", None), seconds=0.5)
    live._flights, live._lock = both._flights, both._lock  # one table of flights, as one server keeps
    began = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda v: v.verdict(), [both, live]))
    assert time.monotonic() - began < 0.9 and both.judged == live.judged == 1

    # A caller never waits longer than wait_s for another caller's evaluation.
    slow = Judged(stub(report=None), seconds=1.0, wait_s=0.1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(slow.verdict)
        time.sleep(0.2)
        with pytest.raises(StillEvaluating, match="still being evaluated"):
            slow.verdict()
        assert first.result().decision == "pass"


def test_a_non_finite_value_or_bound_is_rendered_as_null() -> None:
    gate = GateResult("shift", "prediction_drift", "rollback", "pass", -math.inf, {"max": math.inf, "min": 0.5})
    report = GateReport("v1.1.0", 500, "pass", [gate])
    env = stub()
    verdict = Verdicts(env)._verdict(env.router.state.slot("green"), "canary", report, "now", "evaluated")  # type: ignore[arg-type]
    said = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))  # what Starlette's JSONResponse requires
    assert said["gates"][0]["value"] is None and said["gates"][0]["threshold"] == {"max": None, "min": 0.5}


def test_a_server_without_a_prediction_log_says_why_its_label_gates_stay_inconclusive() -> None:
    # serve --no-log, a regressor's canary with an `mae` label gate: labels are refused (409), so it waits for ever
    gates = {"min_samples": 50, "gates": [{"name": "errors", "kind": "error_rate", "max": 0.05}]}
    gates["gates"].append({"name": "mae", "kind": "label_metric", "metric": "mae", "max": 80})
    env = stub()
    slot = env.router.state.slot("green")
    slot.bundle = SimpleNamespace(version="v1.1.0", gates=gates, info=SimpleNamespace(tag="model@v1.1.0"))
    errors = GateResult("errors", "error_rate", "rollback", "pass", 0.0, {"max": 0.05})
    mae = GateResult("mae", "label_metric", "rollback", "insufficient", None, {"max": 80}, {"reason": "0 labelled"})
    report = GateReport("v1.1.0", 120, "inconclusive", [errors, mae])
    logged = Verdicts(env)._verdict(slot, "canary", report, "now", "evaluated")  # type: ignore[arg-type]
    assert logged.reason == "inconclusive: mae: insufficient", logged.reason  # with a log, labels may still come
    env.log = None
    verdict = Verdicts(env)._verdict(slot, "canary", report, "now", "evaluated")  # type: ignore[arg-type]
    assert verdict.decision == "inconclusive" and verdict.reason.startswith("inconclusive: mae: insufficient (")
    assert "no prediction log (serve --no-log)" in verdict.reason and "this server's memory" in verdict.reason
    assert "mae can never be decided" in verdict.reason and "errors" not in verdict.reason.split("(")[1], verdict
    passed = GateReport("v1.1.0", 120, "pass", [errors])
    assert Verdicts(env)._verdict(slot, "canary", passed, "now", "evaluated").reason == "pass"  # type: ignore[arg-type]


def test_warn_holds_the_version_as_the_watchdog_does() -> None:
    verdict = Judged(stub(report=watchdog_report(decision="warn"))).verdict()
    assert verdict.decision == "warn" and verdict.inconclusive and not verdict.passed and not verdict.failed
    assert flagger_status(verdict) == 412


# --------------------------------------------------------------------------- the README's AnalysisTemplate, as a run
def argo_run(decisions: list[str]) -> str:
    """Argo's AnalysisRun phase after these measurements, with the README's limits (analysis.go's rules):
    Failed when failures exceed failureLimit, Inconclusive when inconclusive ones exceed inconclusiveLimit,
    Successful once ``count`` measurements are taken, else Running."""
    metric = readme_yaml("AnalysisTemplate")["spec"]["metrics"][0]
    failed = inconclusive = 0
    for taken, decision in enumerate(decisions, 1):
        if condition(metric["failureCondition"], decision):
            failed += 1
        elif not condition(metric["successCondition"], decision):
            inconclusive += 1
        if failed > int(metric.get("failureLimit", 0)):
            return "Failed"
        if inconclusive > int(metric.get("inconclusiveLimit", 0)):
            return "Inconclusive"  # the Rollout pauses (a person resumes: a new run; or aborts)
        if taken >= int(metric["count"]):
            return "Successful"
    return "Running"


def test_the_readmes_template_pauses_on_the_first_undecided_verdict_as_the_watchdog_does() -> None:
    count = int(readme_yaml("AnalysisTemplate")["spec"]["metrics"][0]["count"])
    assert argo_run(["pass"] * count) == "Successful"
    assert argo_run(["pass", "rollback"]) == "Failed"
    assert argo_run(["pass", "inconclusive"]) == "Inconclusive"  # never counted towards a success
    assert argo_run(["pass", "warn"]) == "Inconclusive"  # the watchdog never promotes on warn either
    assert argo_run(["inconclusive"] + ["pass"] * count) == "Inconclusive"


def test_no_slice_value_reaches_a_controllers_logs() -> None:
    # A slice gate `by: alcohol` whose worst slice names a value any client can send through /predict.
    worst = {"alcohol": 13.7771234}
    evidence = {"metric": "accuracy", "worst_slice": worst, "slices": [{"slice": worst, "n": 40, "value": 0.475}]}
    gate = {"name": "by-alcohol", "kind": "slice", "severity": "warn", "status": "fail", "observed": 0.475}
    gate |= {"threshold": {"min": 0.9}, "evidence": evidence, "failure_limit": 1}
    verdict = Judged(stub(report=watchdog_report(decision="warn", gates=[gate]))).verdict()
    assert verdict.source == "watchdog" and "13.77" not in json.dumps(verdict.to_dict()), verdict
    assert verdict.gates[0].message == "by-alcohol accuracy 0.475 < 0.9"
    assert verdict.reason == "warn: by-alcohol accuracy 0.475 < 0.9"


# --------------------------------------------------------------------------- what leaves the server
def test_an_automatic_rollback_tells_the_on_call_its_gates_but_never_the_slices_value(
    built: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The segment-drift gate's worst slice is region=west: a value any client sends through /predict.
    from rollbackkit.notify.message import Notice, slack_body
    from rollbackkit.notify.process import notifier_for
    from rollbackkit.project import ProjectPaths
    from rollbackkit.serving.environment import ServingEnvironment

    from .conftest import git
    from .story import BAD_SEGMENT, ROWS_PER_REQUEST, SEGMENT
    from .webhooks import SECRET, receiving

    template, live = built
    shutil.copy(template.parent / "features.py", tmp_path / "features.py")
    repo = copy_project(template, tmp_path)
    monkeypatch.setenv("ONCALL_SECRET", SECRET)
    with receiving() as oncall:
        config = repo / ".rollbackkit" / "config.yaml"
        target = {"name": "oncall", "url": oncall.url, "secret_env": "ONCALL_SECRET", "backoff": 0.1}
        config.write_text(yaml.safe_dump({**(yaml.safe_load(config.read_text()) or {}), "notify": [target]}))
        git(repo, "commit", "-q", "-m", "notify", "--", ".rollbackkit/config.yaml")
        notifier = notifier_for(ProjectPaths(repo))
        env = ServingEnvironment(repo, "model", "prod", notifier=notifier)
        env.start()
        try:
            env.deploy("v1.1.0", canary=50, features=live.iloc[:300], reason="try it")
            bad = degraded(live.iloc[:2000], list(live.columns[:6]))
            for i in range(0, len(bad), ROWS_PER_REQUEST):
                env.predict(bad.iloc[i : i + ROWS_PER_REQUEST], key=f"degraded-{i}")
            wait(lambda: env.check_gates() is not None, 30, "the watchdog's rollback", every=0.1)
            wait(lambda: oncall.events()["auto-rollback"] == 1, 20, "the auto-rollback's notice", every=0.05)
        finally:
            env.stop(wait=5)
            if notifier is not None:
                notifier.close(wait=1)

    body = next(b for b in oncall.delivered.values() if b["event"] == "auto-rollback")
    gates = body["details"]["gates"]
    assert gates.startswith("rollback: segment-drift psi ") and " > 0.5" in gates, body  # names, values, bounds
    assert body["details"]["reason"] is None and "segment-drift" in body["summary"], body
    for said in (json.dumps(body), slack_body(Notice.from_dict(body)).decode()):
        assert BAD_SEGMENT not in said and f"{SEGMENT}=" not in said, said
    # The operator's own records keep the slice: the journal and the rollback tag's reason.
    breach = next(e for e in env.journal.entries() if e["event"] == "gate-breach")
    assert f"{SEGMENT}={BAD_SEGMENT}" in breach["gates"], breach
    rollback = env.deployments.history("model", "prod")[-1]
    assert rollback.action == "auto-rollback" and f"{SEGMENT}={BAD_SEGMENT}" in rollback.reason, rollback
    drift = next(g for g in env.status()["gates"]["gates"] if g["name"] == "segment-drift")
    assert drift["evidence"]["worst_slice"] == {SEGMENT: BAD_SEGMENT}, drift  # /status (the admin's view)
