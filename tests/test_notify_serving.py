"""Notifications from a served environment and the CLI: a dead webhook never delays a traffic shift,
never blocks serving, never keeps a CLI waiting; a bad config stops ``serve`` in one line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pandas as pd
import yaml

from rollbackkit.notify.process import notifier_for
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.environment import ServingEnvironment

from .conftest import git, live_records, run_cli
from .servers import running_server
from .story import wait
from .webhooks import SECRET, Receiver, receiving, refused_url

QUICK = {"secret_env": "ONCALL_SECRET", "backoff": 0.1, "max_delay": 0.5}


def _configure(repo: Path, *targets: dict) -> None:
    """Commit ``notify:`` with ``targets`` into the project's config."""
    config = repo / ".rollbackkit" / "config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    config.write_text(yaml.safe_dump({**data, "notify": list(targets)}, sort_keys=False))
    git(repo, "commit", "-q", "-m", "notify", "--", ".rollbackkit/config.yaml")


def _events(receiver: Receiver) -> list[str]:
    return sorted(receiver.events().elements())


def test_a_dead_webhook_never_delays_a_rollback_and_each_event_reaches_the_live_one_once(
    served: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ONCALL_SECRET", SECRET)
    with receiving(silent=True) as dead, receiving(refuse=2) as oncall:
        _configure(
            served,
            {"name": "dead", "url": dead.url, "timeout": 2, "attempts": 1, **QUICK},
            {"name": "oncall", "url": oncall.url, "pause_grace": 0.2, **QUICK},
        )
        notifier = notifier_for(ProjectPaths(served))
        assert notifier is not None
        environment = ServingEnvironment(served, "churn", "prod", notifier=notifier)
        environment.start()
        environment.deploy("v1.1.0", canary=30, reason="try it")
        environment.watchdog.evaluate()  # no traffic yet: the rollout pauses (told once)
        environment.watchdog.evaluate()
        wait(lambda: oncall.events()["paused"] == 1, 20, "the pause, after its grace", every=0.05)
        time.sleep(0.1)  # the dead target's worker now hangs on its endpoint
        started = time.perf_counter()
        answer = environment.rollback(reason="bad scores")
        took = time.perf_counter() - started
        assert answer["assignment"]["version"] == "v1.0.0"
        assert took < 1.0, took  # the dead endpoint's 2 s timeout is nowhere in it
        assert environment.predict(pd.DataFrame(live_records(3, seed=5))).slot.bundle.version == "v1.0.0"
        wait(lambda: len(oncall.delivered) == 3, 20, "the live receiver's three events", every=0.05)
        wait(lambda: environment.status()["notifications"]["failed"] == 2, 20, "the dead target's failures", every=0.1)
        notifier.close(wait=1)
    assert _events(oncall) == ["canary", "paused", "rollback"] and not oncall.duplicates
    paused = next(b for b in oncall.delivered.values() if b["event"] == "paused")
    assert "no traffic" in paused["details"]["reason"] and paused["version"] == "v1.1.0"
    said = environment.status()["notifications"]
    assert said["targets"]["oncall"]["delivered"] == 3 and said["targets"]["oncall"]["retries"] == 2
    assert said["targets"]["dead"]["failed"] == 2 and "Timeout" in said["targets"]["dead"]["last_error"]
    # (the dead target's own pause_grace, 10 minutes, never passed: its paused was never sent)
    assert SECRET not in str(said) and dead.url not in str(said)


def _canary_told(served: Path) -> tuple[ServingEnvironment, list]:
    """An in-process server of ``served`` with v1.1.0 as a 30% canary, and the events told from then on."""
    environment = ServingEnvironment(served, "churn", "prod")
    told: list = []
    environment.listeners.append(told.append)
    environment.start()
    environment.deploy("v1.1.0", canary=30, reason="try it")
    told.clear()
    return environment, told


def test_the_watchdog_tells_a_pause_after_three_errors_in_a_row_and_a_gate_failure_only_when_traffic_stays(
    served: Path, monkeypatch
) -> None:
    from rollbackkit.serving.rollout import candidate

    environment, told = _canary_told(served)
    watchdog, (_, slot) = environment.watchdog, candidate(environment.router.state)
    monkeypatch.setattr(watchdog, "check", lambda: 1 / 0)
    for _ in range(2):
        watchdog.tick()
    assert told == []  # one or two failed evaluations are no news (counted in /status)
    watchdog.tick()
    said = [(e.kind, e.reason) for e in told]  # the words leave the server: the exception's type, never its text
    assert said == [("paused", "evaluation failed 3 times in a row (ZeroDivisionError)")], said
    watchdog.teller.tell(slot, "pass", "", None)  # the evaluation works again: the pause ends
    watchdog.teller.tell(slot, "rollback", "drift", None, rolled_back=True)  # the auto-rollback carries the gates
    watchdog.teller.tell(slot, "pass", "", None)
    watchdog.teller.tell(slot, "rollback", "drift", None)  # nothing to roll back to: traffic stays
    assert [e.kind for e in told] == ["paused", "resumed", "gate-failed"]
    environment.stop(wait=5)


def test_a_rollback_superseded_by_a_traffic_move_tells_no_gate_failure(served: Path, monkeypatch) -> None:
    """The watchdog's rollback found traffic moved since it judged: it judges again, and says nothing yet
    (a gate-failed here would page for a failure whose auto-rollback follows on the next tick)."""
    from rollbackkit.analysis.gateresult import GateReport, GateResult
    from rollbackkit.errors import Superseded
    from rollbackkit.serving.rollout import candidate

    environment, told = _canary_told(served)
    watchdog, (_, slot) = environment.watchdog, candidate(environment.router.state)

    def moved(**_: object) -> None:
        raise Superseded("Traffic in prod moved after the gate evaluation.", "Evaluate again.")

    monkeypatch.setattr(environment, "rollback", moved)
    drift = GateResult("drift", "prediction_drift", "rollback", "fail", 0.9, {"max": 0.2})
    report = GateReport("v1.1.0", 500, "rollback", [drift])
    assert watchdog._act(environment.router.state, slot, report, None, None) is None
    assert told == []
    monkeypatch.undo()
    assert watchdog._act(environment.router.state, slot, report, None, None) is not None  # the next tick acts
    assert [(e.kind, e.action) for e in told] == [("rollback", "auto-rollback")]
    environment.stop(wait=5)


def test_an_edited_notify_config_never_closes_a_running_servers_notifier(served: Path, monkeypatch) -> None:
    """serve holds its notifier: the rollback runbook it starts, and every later event, go through it."""
    from rollbackkit.notify.message import Notice
    from rollbackkit.notify.process import hold, release
    from rollbackkit.ops import notices

    monkeypatch.setenv("ONCALL_SECRET", SECRET)
    paths = ProjectPaths(served)
    with receiving() as oncall:
        _configure(served, {"name": "oncall", "url": oncall.url, **QUICK})
        notifier = hold(paths, notifier_for(paths))  # as serve does
        assert notifier is not None
        environment = ServingEnvironment(served, "churn", "prod", notifier=notifier)
        environment.start()
        notifier.start()
        try:
            environment.deploy("v1.1.0", canary=30, reason="try it")
            _configure(served, {"name": "oncall", "url": oncall.url, "events": ["rollback", "runbook"], **QUICK})
            environment.rollback(reason="bad scores")
            notices.send(paths, Notice("runbook", "runbook rollback for churn in prod ok"))  # its runbook ends
            assert notifier_for(paths) is notifier and not notifier.closed
            environment.deploy("v1.1.0", canary=10, reason="again")  # the next event
            wait(lambda: len(oncall.delivered) == 4, 20, "all four notices", every=0.05)
            said = environment.status()["notifications"]
            assert said["delivered"] == 4 and said["queued"] == 0, said
        finally:
            environment.stop(wait=5)
            release(paths, 1.0)
    assert _events(oncall) == ["canary", "canary", "rollback", "runbook"] and not oncall.duplicates
    own = notifier_for(paths)  # a CLI in this process then builds its own
    assert notifier.closed and own is not None and own is not notifier
    own.close()


def test_an_unreachable_url_is_a_failed_delivery_in_status_and_the_server_serves_on(served: Path) -> None:
    _configure(served, {"name": "pager", "url": refused_url(), "attempts": 2, **QUICK})
    with running_server(served, "churn", "prod", extra_env={"ONCALL_SECRET": SECRET}) as server:
        from .servers import TOKEN

        answer = httpx.post(
            f"{server.url}/admin/deploy", json={"version": "v1.1.0", "reason": "go"},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        failed = wait(lambda: server.status()["notifications"]["failed"] == 1, 20, "the failed delivery")
        assert failed
        said = server.status()["notifications"]["targets"]["pager"]
        assert said["delivered"] == 0 and said["retries"] == 1 and "ConnectError" in said["last_error"]
        assert server.predict(live_records(5, seed=3)).status_code == 200
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        failed = 'rollbackkit_notifications_total{env="prod",model="churn",outcome="failed",target="pager"} 1.0'
        assert failed in metrics, metrics
        for line in (  # what /status counts beside deliveries can raise an alert too
            'rollbackkit_notification_errors_total{env="prod",model="churn"} 0.0',
            'rollbackkit_notification_config_errors_total{env="prod",model="churn"} 0.0',
            'rollbackkit_notifications_unsaved{env="prod",model="churn"} 0.0',
            'rollbackkit_notifications_unreadable{env="prod",model="churn",target="pager"} 0.0',
        ):
            assert line in metrics, line
        assert SECRET not in httpx.get(f"{server.url}/status", timeout=30).text


def test_a_bad_notify_config_stops_serve_in_one_line_before_anything_is_loaded(served: Path) -> None:
    for target, said in (
        ({"name": "pager", "url": "https://hooks.example.com/x"}, "notify target pager: no secret"),
        ({"name": "pager", "url": "https://hooks.example.com/x", "secret_env": "UNSET_X"}, "secret_env UNSET_X"),
        ({"name": "pager", "url": "not a url", "secret_env": "ONCALL_SECRET"}, "url 'not a url'"),
    ):
        _configure(served, target)
        result = run_cli("serve", "churn", "--env", "prod", "--port", "0", cwd=served, env={"ONCALL_SECRET": "x"})
        assert result.returncode == 1 and said in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (served / ".rollbackkit" / "local" / "servers" / "churn-prod.json").exists()

    # Without a server, the same broken config never stops a deploy nor a rollback: one warning each.
    for command in (("deploy", "churn@v1.1.0"), ("rollback", "churn", "--reason", "bad scores")):
        done = run_cli(*command, "--env", "prod", cwd=served, env={"ONCALL_SECRET": "x"})
        assert done.returncode == 0, done.stderr
        warned = [line for line in done.stderr.splitlines() if line.startswith("warning: not notified")]
        assert len(warned) == 1 and "url 'not a url'" in warned[0], done.stderr
    journal = (served / ".rollbackkit" / "local" / "journal.jsonl").read_text().splitlines()
    gaps = [e for e in map(json.loads, journal) if e["event"] == "notification"]
    assert [(e["notice_event"], e["outcome"], e["error"][:7]) for e in gaps] == [
        ("deploy", "failed", "config:"), ("rollback", "failed", "config:")
    ]  # fmt: skip


def test_a_cli_change_without_a_server_never_waits_on_a_webhook_and_a_drain_delivers_it(served: Path) -> None:
    with receiving(silent=True) as dead, receiving(refuse=2) as oncall:
        _configure(
            served,
            {"name": "dead", "url": dead.url, "timeout": 30, "attempts": 1, **QUICK},
            {"name": "oncall", "url": oncall.url, "events": ["deploy", "test"], **QUICK},
        )
        env = {"ONCALL_SECRET": SECRET}
        started = time.monotonic()
        result = run_cli("deploy", "churn@v1.1.0", "--env", "prod", cwd=served, env=env)
        took = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert took < 25, took  # the dead target's 30 s timeout is not waited for
        wait(lambda: oncall.events()["deploy"] == 1, 30, "the drain to deliver the deploy", every=0.1)
        body = next(iter(oncall.delivered.values()))
        assert body["version"] == "v1.1.0" and body["details"]["via"] == "workspace"

        down = {"name": "down", "url": refused_url(), **QUICK}
        _configure(served, {"name": "oncall", "url": oncall.url, **QUICK}, down)
        tested = run_cli("notify", "test", cwd=served, env=env)
        assert tested.returncode == 1, tested.stderr  # one target failed
    lines = tested.stdout.strip().splitlines()
    assert lines[0] == "oncall: delivered (HTTP 200)" and lines[1].startswith("down: failed (ConnectError"), lines
    assert oncall.events()["test"] == 1 and not oncall.duplicates
