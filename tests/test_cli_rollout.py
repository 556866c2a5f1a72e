"""Shadow and stepped rollouts from the command line (issue 19), as an on-call engineer runs them.

A wine classifier with string labels and the columns real tables have (NaN, ``Int64``,
``boolean``, ``string``, a ``category`` segment): ``deploy --shadow`` (bare and with a
share), ``promote --from-shadow --canary``, ``deploy --steps --bake``, read back through
``status``, ``history`` and ``--json`` against a real server. Without a server, and with bad
values, each is one clean line and nothing changes. The screens read inconclusive and
skipped gates with their reason and their evidence against the live version.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from .adversarial.conftest import assert_one_clean_line, rollbackkit
from .conftest import copy_project, git, run_cli
from .servers import TOKEN, Server, running_server
from .story import Case, records
from .terminal import save, screen
from .test_matrix import template

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
CASE = Case("multiclass-string-labels", "wine", "names")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def wine_template(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Any:
    """``model@v1.0.0`` serving prod, ``model@v1.1.0`` registered; built once per run (test_matrix's template)."""
    return template(CASE, tmp_path_factory)


@pytest.fixture
def wine(wine_template: Any, tmp_path: Path) -> Any:
    """A private copy of the project and its live inputs."""
    template, live = wine_template
    shutil.copy(template.parent / "features.py", tmp_path / "features.py")
    return copy_project(template, tmp_path), live


def _cli(repo: Path, *args: str) -> dict[str, Any]:
    done = run_cli(*args, "--json", cwd=repo, env=ADMIN)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _send(server: Server, live: Any, rows: int) -> None:
    for i in range(0, rows, 50):
        assert server.predict(records(live.iloc[i : i + 50]), key=f"user-{i}").status_code == 200


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_shadow_from_the_cli_shows_in_status_and_history_then_becomes_a_canary(wine: Any) -> None:
    repo, live = wine
    with running_server(repo, "model", "prod") as server:
        partial = _cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--shadow", "20", "--reason", "mirror a fifth")
        assert (partial["assignment"]["action"], partial["assignment"]["shadow_percent"]) == ("shadow", 20)
        assert server.status()["live"]["version"] == "v1.0.0"  # the shadow takes no traffic
        _cli(repo, "rollback", "model", "--env", "prod", "--reason", "wrong share")

        whole = _cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--shadow", "--reason", "mirror everything")
        assert (whole["assignment"]["action"], whole["assignment"]["shadow_percent"]) == ("shadow", 100)
        _send(server, live, 300)
        shown = screen("status", "model", "--env", "prod", cwd=repo)
        save(shown, ARTIFACTS / "status-80-shadow.txt")
        text = _flat(shown.stdout)
        assert shown.returncode == 0 and shown.fits(24), shown
        assert "v1.1.0 scores a mirror of 100% of requests" in text, shown
        assert "mirrored" in text and "dropped" in text and "failed" in text, shown
        assert "v1.0.0 since" in text, shown  # live is untouched

        canary = _cli(repo, "promote", "model", "--env", "prod", "--from-shadow", "--canary", "10")
        assert (canary["assignment"]["action"], canary["assignment"]["canary_percent"]) == ("canary", 10)
        assert server.status()["canary"]["percent"] == 10 and server.status().get("shadow") is None

    history = screen("history", "model", "--env", "prod", cwd=repo)
    save(history, ARTIFACTS / "history-80-shadow.txt")
    assert history.returncode == 0 and history.fits(), history
    assert history.whole("shadow 20%") and history.whole("shadow 100%") and history.whole("canary 10%"), history
    entries = _cli(repo, "history", "model", "--env", "prod")["assignments"]
    assert [(a["action"], a["shadow_percent"], a["canary_percent"]) for a in entries[-4:]] == [
        ("shadow", 20, None),
        ("rollback", None, None),
        ("shadow", 100, None),
        ("canary", None, 10),
    ]


def test_a_stepped_rollout_without_traffic_waits_at_step_1_of_4_and_says_why(wine: Any) -> None:
    repo, _ = wine
    with running_server(repo, "model", "prod", watchdog=0.5) as server:
        started = _cli(
            repo, "deploy", "model@v1.1.0", "--env", "prod", "--steps", "5,25,50,100", "--bake", "1s",
            "--reason", "step by step",
        )  # fmt: skip
        done = started["assignment"]
        assert (done["action"], done["canary_percent"], done["steps"], done["bake_s"]) == (
            "canary",
            5,
            [5, 25, 50, 100],
            1,
        )
        said = run_cli("deploy", "model@v1.1.0", "--env", "prod", cwd=repo, env=ADMIN)  # a canary runs: refused
        assert said.returncode == 1 and len(said.stderr.strip().splitlines()) == 1, said.stderr
        report = _wait_for_rollout(server)
        assert report["rollout"]["step"] == 1 and report["decision"] == "inconclusive", report
        shown = screen("status", "model", "--env", "prod", cwd=repo)
        save(shown, ARTIFACTS / "status-80-steps.txt")
    text = _flat(shown.stdout)
    assert shown.returncode == 0 and shown.fits(24), shown
    assert "v1.1.0 at 5% of traffic" in text and "(step 1 of 4)" in text, shown
    assert "paused" in text and "no traffic" in text, shown  # never a pass, never promoted

    history = screen("history", "model", "--env", "prod", cwd=repo)
    save(history, ARTIFACTS / "history-80-steps.txt")
    assert history.returncode == 0 and history.fits(), history
    assert history.whole("canary 5%") and history.whole("(step 1 of 4, bake 1s)"), history
    assert "promote" not in history.stdout, history


def _wait_for_rollout(server: Server, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gates = server.status().get("gates") or {}
        if gates.get("rollout") and gates.get("decision") == "inconclusive":
            return gates  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"no rollout in the gate report: {server.status().get('gates')}")


NO_SERVER = [
    (("deploy", "churn@v1.1.0", "--env", "prod", "--shadow"), "A shadow needs a running server for prod"),
    (("deploy", "churn@v1.1.0", "--env", "prod", "--shadow", "20"), "A shadow needs a running server"),
    (("deploy", "churn@v1.1.0", "--shadow", "--env", "prod"), "A shadow needs a running server"),
    (("deploy", "churn@v1.1.0", "--env", "prod", "--steps", "5,25,50,100", "--bake", "10m"), "A stepped rollout"),
    (("promote", "churn", "--env", "prod", "--from-shadow"), "no shadow to promote"),
    (("promote", "churn", "--env", "prod", "--from-shadow", "--canary", "10"), "no shadow to promote"),
]

BAD_VALUES = [
    (("--steps", "5,x,100"), "--steps: 'x' is not a whole percent"),
    (("--steps", "50,25,100"), "--steps: 25 after 50 does not increase"),
    (("--steps", "100"), "is one step"),
    (("--steps", "5,25,50"), "the last step must be 100"),
    (("--steps", "0,100"), "--steps: 0 is not a percent from 1 to 100. Give --steps 1-100."),
    (("--steps", "5,25,100", "--bake", "10x"), "--bake: '10x' is not a duration"),
    (("--steps", "5,25,100", "--bake", "0s"), "--bake: 0s is no time at all"),
    (("--bake", "10m"), "--bake applies to a stepped rollout only, and no --steps were given"),
    (("--shadow", "0"), "--shadow: 0 is not a percent from 1 to 100. Give --shadow 1-100."),
    (("--shadow", "-5"), "--shadow: -5"),
    (("--shadow", "abc"), "--shadow: 'abc' is not a whole percent. Give --shadow 1-100"),
    (("--shadow=abc",), "--shadow: 'abc' is not a whole percent. Give --shadow 1-100"),
    (("--shadow", "--canary", "10"), "--canary and --shadow cannot be combined"),
    (("--steps", "5,100", "--canary", "10"), "--canary and --steps cannot be combined"),
    (("--canary", "100"), "--canary: 100 is not a percent from 1 to 99. Give --canary 1-99."),
]


def _unchanged(repo: Path) -> tuple[str, str]:
    return git(repo, "tag", "--list", "churn#*"), git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(("args", "said"), NO_SERVER, ids=[" ".join(a) for a, _ in NO_SERVER])
def test_without_a_server_each_rollout_is_one_clean_line(served: Path, args: tuple[str, ...], said: str) -> None:
    before = _unchanged(served)
    assert_one_clean_line(rollbackkit(*args, cwd=served), said)
    assert _unchanged(served) == before


@pytest.mark.parametrize(("extra", "said"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_rollout_values_are_one_clean_line(served: Path, extra: tuple[str, ...], said: str) -> None:
    before = _unchanged(served)
    assert_one_clean_line(rollbackkit("deploy", "churn@v1.1.0", "--env", "prod", *extra, cwd=served), said)
    assert _unchanged(served) == before


def test_promote_canary_without_from_shadow_is_one_clean_line(served: Path) -> None:
    outcome = rollbackkit("promote", "churn", "--env", "prod", "--canary", "10", cwd=served)
    assert_one_clean_line(outcome, "promote takes --canary only from a shadow, and --from-shadow was not given")


def test_a_bare_shadow_means_every_request_and_a_value_is_kept() -> None:
    from rollbackkit.cli import optional_values

    assert optional_values(["deploy", "m@v1.0.0", "--shadow"]) == ["deploy", "m@v1.0.0", "--shadow", "100"]
    assert optional_values(["deploy", "--shadow", "m@v1.0.0"]) == ["deploy", "--shadow", "100", "m@v1.0.0"]
    assert optional_values(["deploy", "m@v1.0.0", "--shadow", "20", "--env", "p"])[3] == "20"
    assert optional_values(["deploy", "m", "--shadow", "--env", "p"]) == [
        "deploy",
        "m",
        "--shadow",
        "100",
        "--env",
        "p",
    ]
    assert optional_values(["deploy", "m", "--shadow=30"]) == ["deploy", "m", "--shadow=30"]
    assert optional_values(["deploy", "m", "--", "--shadow"]) == ["deploy", "m", "--", "--shadow"]


# The screens, fed the typed reports a server sends.


def _render(draw: Any) -> str:
    console = Console(file=io.StringIO(), width=100, no_color=True)
    draw(console)
    return " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]


def _gate(name: str, kind: str, status: str, observed: float | None, threshold: dict, **evidence: Any) -> dict:
    return {"name": name, "kind": kind, "severity": "rollback", "status": status, "observed": observed,
            "threshold": threshold, "evidence": evidence}  # fmt: skip


def _report(decision: str) -> Any:
    from rollbackkit.serving.status import GateStatus

    compared = {"compare": "max_ratio", "candidate": 41.2, "live": 31.7, "ratio": 1.3, "ci": [1.1, 1.52],
                "confidence": 0.95, "n": 400, "material": True, "supported": False}  # fmt: skip
    gates = [
        _gate("p99-vs-live", "latency", "inconclusive", 41.2, {"max_ratio": 1.2}, **compared, n_live=7600),
        _gate("agreement", "agreement", "skipped", None, {"min": 0.9}, reason="no live version serves beside it"),
        _gate("accuracy-by-segment", "slice", "insufficient", None, {"min": 0.8},
              reason="12 labelled rows, 200 needed"),
    ]  # fmt: skip
    return GateStatus.from_dict({"version": "model@v1.1.0", "n": 400, "decision": decision, "gates": gates})


def test_gates_check_screen_shows_inconclusive_and_skipped_gates_with_reason_and_evidence() -> None:
    from rollbackkit.screens.gates import against_live, render

    text = _render(lambda console: render(console, _report("inconclusive")))
    assert text.startswith("model@v1.1.0: inconclusive (400 rows)"), text
    assert "inconclusive p99-vs-live 41.2 ms vs live 31.7 ms: ratio 1.3 > 1.2 (ci 1.1 to 1.52" in text, text
    assert "(latency, rollback) over 400 rows (live 7600), 95% ci skipped" in text, text
    evidence = _report("fail").gates[0].evidence | {"supported": True}
    assert against_live(evidence) == (
        "candidate 41.2 vs live 31.7, ratio 1.3, 95% ci [1.1, 1.52], over 400 rows (live 7600): material and supported"
    )
    assert against_live({"reason": "no live version serves beside it"}) == ""
    assert "skipped agreement: no live version serves beside it (agreement, rollback)" in text, text
    assert "insufficient accuracy-by-segment: 12 labelled rows, 200 needed" in text, text


def test_status_screen_shows_the_rollout_why_it_is_paused_and_the_candidate_s_gates() -> None:
    from datetime import UTC, datetime

    from rollbackkit.ops.overview import Overview
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.screens.status import render
    from rollbackkit.serving.rollout import Rollout

    now = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    step = Assignment(
        "model", "prod", "v1.1.0", "model#prod#3", "2026-11-30T15:58:00+00:00", "canary",
        canary_percent=25, steps=(5, 25, 50, 100), bake_s=600.0,
    )  # fmt: skip
    paused = Rollout("v1.1.0", step.tag, "canary", 25, (5, 25, 50, 100), 2, 600.0, 0.0, "paused", "no traffic")
    report = _report("inconclusive")
    report = replace(report, rollout=paused, paused="no traffic")
    view = Overview(
        name="model", env="prod", live="v1.0.0", live_since=None, canary=step, canary_percent=25, previous=None,
        gates=None, other_gates=report, log=None, server="http://127.0.0.1:1", server_error=None, status=None,
        assignments=3, rollout=paused, candidate_gates=report,
    )  # fmt: skip
    text = _render(lambda console: console.print(render(view, now)))
    assert "v1.1.0 at 25% of traffic" in text, text
    assert "rollout canary 25% (step 2 of 4): paused: no traffic" in text, text
    assert "model@v1.1.0: inconclusive over 400 rows" in text, text
    assert "inconclusive: p99-vs-live" in text and "accuracy-by-segment: insufficient" in text, text
    assert "skipped: agreement (no live version serves beside it)" in text, text
    assert "watchdog errors" not in text and "promoted:" not in text, text

    broken = replace(report, watchdog_errors=3, last_watchdog_error="ValueError: bad window", promoted="model#prod#4")
    text = _render(lambda console: console.print(render(replace(view, candidate_gates=broken), now)))
    assert "watchdog errors: 3 (last: ValueError: bad window)" in text, text  # never swallowed
    assert "promoted: model#prod#4" in text, text

    shadow = replace(step, action="shadow", canary_percent=None, shadow_percent=50, steps=(), bake_s=None)
    offline = replace(view, server=None, canary=None, canary_percent=None, shadow=shadow, shadow_percent=50,
                      rollout=None, candidate_gates=None, other_gates=None)  # fmt: skip
    text = _render(lambda console: console.print(render(offline, now)))
    assert "shadow v1.1.0 scores a mirror of 50% of requests once a server runs since" in text, text


def test_history_names_each_step_the_shadow_and_the_promotion_at_the_end() -> None:
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.screens.history import action

    def at(act: str, **fields: Any) -> Assignment:
        return Assignment("model", "prod", "v1.1.0", "model#prod#2", "2026-11-30T15:58:00+00:00", act, **fields)

    plan = {"steps": (5, 25, 50, 100), "bake_s": 600.0}
    assert action(at("shadow", shadow_percent=50)) == "shadow 50%"
    assert action(at("canary", canary_percent=25, **plan)) == "canary 25% (step 2 of 4, bake 10m)"
    assert action(at("canary", canary_percent=25, **plan), lines=True) == "canary 25%\n(step 2 of 4, bake 10m)"
    assert action(at("promote", **plan)) == "promote (step 4 of 4)"
    assert action(at("canary", canary_percent=10)) == "canary 10%"  # a plain canary, as before


def test_assignment_results_carry_the_rollout_fields_and_read_old_answers() -> None:
    from rollbackkit.ops.assignment_results import AssignmentResult

    answer = {
        "via": "http://127.0.0.1:1",
        "assignment": {
            "name": "model", "env": "prod", "version": "v1.1.0", "tag": "model#prod#2", "time": "t",
            "action": "canary", "canary_percent": 5, "steps": [5, 25, 50, 100], "bake_s": 60.0, "shadow_percent": None,
        },
    }  # fmt: skip
    result = AssignmentResult.from_dict(answer)
    assert (result.assignment.steps, result.assignment.bake_s, result.assignment.step) == (
        (5, 25, 50, 100),
        60.0,
        (1, 4),
    )
    assert result.to_dict() == answer
    again = AssignmentResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.assignment == result.assignment
    plan = {"steps", "bake_s", "shadow_percent"}
    old = {"via": "workspace", "assignment": {k: v for k, v in answer["assignment"].items() if k not in plan}}
    assert AssignmentResult.from_dict(old).assignment.steps == ()  # an older server's answer


def test_the_python_api_refuses_a_shadow_and_steps_together_before_asking_anyone(served: Path) -> None:
    from rollbackkit import deploy, promote
    from rollbackkit.errors import InvalidInput, ServerError

    with pytest.raises(InvalidInput, match="--shadow and --steps cannot be combined"):
        deploy(served, "churn@v1.1.0", "prod", shadow=50, steps=[5, 100])
    with pytest.raises(ServerError, match="A stepped rollout needs a running server"):
        deploy(served, "churn@v1.1.0", "prod", steps=[5, 50, 100], bake=30)
    with pytest.raises(InvalidInput, match="no shadow to promote"):
        promote(served, "churn", "prod", from_shadow=True, canary=10)


def test_the_readme_gates_example_is_a_valid_gates_file() -> None:
    import yaml

    from rollbackkit.analysis.gatespec import parse_gates_dict

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Gates you can trust")[1].split("\n## ")[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None, "the section lost its gates.yaml example"
    spec = parse_gates_dict(yaml.safe_load(example.group(1)), "README gates.yaml")
    kinds = {g.kind for g in spec.gates}
    assert kinds >= {"label_metric", "slice", "latency", "error_rate", "agreement"}, kinds


def test_deploy_and_serve_say_what_a_shadow_and_a_stepped_rollout_started() -> None:
    from rollbackkit.ops.assignment_results import AssignmentResult
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.screens import messages
    from rollbackkit.serving.status import TrafficEvent

    def started(action: str, **fields: Any) -> AssignmentResult:
        done = Assignment("model", "prod", "v1.1.0", "model#prod#2", "2026-11-30T15:58:00+00:00", action, **fields)
        return AssignmentResult(via="http://127.0.0.1:1", assignment=done, shift_ms=0.4, previous="v1.0.0")

    shadow = _render(lambda console: messages.assignment(console, started("shadow", shadow_percent=50), "Deployed"))
    assert shadow.startswith("Deployed model in prod: v1.1.0 beside v1.0.0 (shadow)"), shadow
    assert "traffic v1.0.0 keeps all traffic" in shadow, shadow
    assert "shadow v1.1.0 scores a mirror of 50% of requests; its answers are logged, never returned" in shadow
    stepped = started("canary", canary_percent=5, steps=(5, 25, 50, 100), bake_s=600.0)
    steps = _render(lambda console: messages.assignment(console, stepped, "Deployed"))
    assert "v1.1.0 takes 5% of traffic, v1.0.0 the rest" in steps, steps
    assert "steps 5% -> 25% -> 50% -> 100%, each once its gates pass for 10m; now step 1 of 4" in steps, steps

    event = TrafficEvent("deploy", "model", "prod", "v1.1.0", previous="v1.0.0", tag="model#prod#2", action="shadow")
    line = _render(lambda console: messages.event(console, event))
    assert "model prod: v1.1.0 beside v1.0.0 (shadow) model#prod#2" in line, line


def test_history_shows_an_automatic_rollback_at_a_step_with_its_labelled_counts() -> None:
    from rollbackkit.analysis.gates import GateReport, GateResult
    from rollbackkit.registry.assignments import Assignment, replay
    from rollbackkit.screens.history import render

    failed = GateResult("accuracy-by-plan", "slice", "rollback", "fail", 0.41, {"min": 0.7},
                        {"metric": "accuracy", "labelled": 120, "eligible": 150})  # fmt: skip
    summary = GateReport("model@v1.1.0", 400, "rollback", [failed]).summary()
    plan = {"steps": (5, 25, 50, 100), "bake_s": 600.0}
    at = "2026-11-30T15:58:00+00:00"
    history = [
        Assignment("model", "prod", "v1.0.0", "model#prod#1", at, "deploy", reason="first release"),
        Assignment("model", "prod", "v1.1.0", "model#prod#2", at, "canary", canary_percent=5, **plan),
        Assignment("model", "prod", "v1.1.0", "model#prod#3", at, "canary", canary_percent=25, **plan),
        Assignment("model", "prod", "v1.0.0", "model#prod#4", at, "auto-rollback", reason=f"gate failed: {summary}",
                   actor="watchdog"),
        Assignment("model", "prod", "v1.1.0", "model#prod#5", at, "canary", canary_percent=50, **plan),
        Assignment("model", "prod", "v1.1.0", "model#prod#6", at, "promote", reason="step 3 of 4 (50%) passed"),
    ]  # fmt: skip
    states = list(zip(history, replay("model", "prod", history)[1:], strict=True))
    text = _render(lambda console: render(console, "model", "prod", states, wide=False))
    assert "canary 5% (step 1 of 4, bake 10m)" in text and "canary 25% (step 2 of 4, bake 10m)" in text, text
    assert "auto-rollback" in text and "accuracy-by-plan 0.41 < 0.7 (120 of 150 rows labelled)" in text, text
    assert re.search(r"v1\.1\.0 promote .*\(step 4 of 4\)", text), text  # the promotion that ended the steps


def test_a_rollback_that_cancels_a_shadow_or_a_canary_says_so_and_affected_counts_shadow_rows(wine: Any) -> None:
    repo, live = wine

    def said(*args: str) -> str:
        done = run_cli(*args, cwd=repo, env=ADMIN)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return _flat(done.stdout)

    with running_server(repo, "model", "prod") as server:
        said("deploy", "model@v1.1.0", "--env", "prod", "--shadow", "50", "--reason", "mirror half")
        _send(server, live, 300)
        for _ in range(50):  # the shadow scores off the request path: its rows come a moment later
            if server.admin("affected", {"version": "v1.1.0"}).json().get("shadow_rows"):
                break  # what `affected` asks the server, without a process per poll
            time.sleep(0.2)
        shadowed = said("affected", "model", "--env", "prod", "--version", "v1.1.0")
        assert re.search(r"^0 rows by model@v1\.1\.0 in prod: .* \(\d+ shadow rows, never in production\)", shadowed)
        planned = said("rollback", "model", "--env", "prod", "--reason", "cancel shadow", "--dry-run")
        assert "shift model in prod: would cancel the shadow v1.1.0; v1.0.0 would keep all traffic" in planned
        assert "v1.0.0 -> v1.0.0" not in planned, planned
        cancelled = said("rollback", "model", "--env", "prod", "--reason", "cancel shadow")
        assert cancelled.startswith("Rolled back model in prod: Cancelled the shadow v1.1.0; v1.0.0 keeps all traffic")
        assert "v1.0.0 -> v1.0.0" not in cancelled and "cancelled the shadow v1.1.0: its mirror stops" in cancelled

        said("deploy", "model@v1.1.0", "--env", "prod", "--canary", "10", "--reason", "a tenth")
        canary = said("rollback", "model", "--env", "prod", "--reason", "cancel canary")
        assert canary.startswith(
            "Rolled back model in prod: Cancelled the canary v1.1.0; v1.0.0 takes all traffic again"
        )
        assert "cancelled the canary v1.1.0: it takes no more traffic" in canary, canary


def test_serve_says_in_one_line_which_rollout_it_resumed_after_a_restart(wine: Any) -> None:
    repo, _ = wine
    with running_server(repo, "model", "prod", watchdog=3600) as server:
        _cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--steps", "5,100", "--bake", "1h", "--reason", "steps")
    assert "resumed" not in server.log.read_text()  # nothing ran when it started
    with running_server(repo, "model", "prod", watchdog=3600) as again:
        assert again.status()["canary"]["percent"] == 5
        _cli(repo, "rollback", "model", "--env", "prod", "--reason", "next: a shadow")
        _cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--shadow", "30", "--reason", "mirror")
    assert "resumed canary v1.1.0 at 5% (step 1 of 2, bake 1h) beside v1.0.0" in again.log.read_text()
    with running_server(repo, "model", "prod", watchdog=3600) as third:
        assert third.status()["shadow"]["percent"] == 30
    assert "resumed shadow v1.1.0 mirroring 30% of requests beside v1.0.0" in third.log.read_text()
