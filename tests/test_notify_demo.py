"""Acceptance: the REAL demo story (`rollbackkit demo`, what `make demo` runs) notifies a webhook.

It is the run's one demo run (tests/demo_run.py: tests/test_demo.py and tests/test_jupyterlab.py read it too).

The receiver on 127.0.0.1 verifies every signature and is down for the first attempts; it still
gets each event of the story exactly once (retries keep one idempotency key), from the demo's
own process (the first deploy, made without a server) and from its server (the canary, the
watchdog's gate failure and automatic rollback, the rollback runbook it ran).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollbackkit.notify.events import EVENTS

from .conftest import run_cli
from .demo_run import STORY, notified_demo
from .webhooks import SECRET


def test_the_demo_story_reaches_a_receiver_that_was_down_once_per_event(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    demo = notified_demo(tmp_path_factory)  # it waited for every event of the story and an empty outbox
    assert demo.not_notified == []
    receiver = demo.receiver
    events = receiver.events()
    assert dict(events) == dict.fromkeys(STORY, 1), events  # each event of the story once, nothing else
    assert set(EVENTS) >= STORY
    assert receiver.attempts[:3] and not receiver.duplicates and not receiver.bad_signatures
    assert len(receiver.attempts) >= len(receiver.delivered) + 3  # the refused attempts were retried

    by_event = {body["event"]: body for body in receiver.delivered.values()}
    rollback = by_event["auto-rollback"]
    assert rollback["version"] == "v1.0.0" and rollback["details"]["previous"] == "v1.1.0", rollback
    assert "AUTOMATIC ROLLBACK" in rollback["summary"] and rollback["details"]["gates"]
    assert rollback["details"]["reason"] is None  # its gates are said in public words; no slice value
    assert by_event["runbook"]["details"]["verdict"] == "already-rolled-back"
    assert by_event["deploy"]["details"]["via"] == "workspace"

    journal = [json.loads(line) for line in demo.journal.splitlines()]
    delivered = {e["id"] for e in journal if e["event"] == "notification" and e["outcome"] == "delivered"}
    assert delivered == set(receiver.delivered)  # one journal entry per delivery, none for a failure
    assert SECRET not in demo.journal and SECRET not in demo.config
    assert SECRET not in (demo.target / ".rollbackkit/local/journal.jsonl").read_text()  # nor since


def test_the_demo_refuses_a_bad_webhook_or_a_missing_secret_before_building_anything(tmp_path: Path) -> None:
    for url, env, said in (
        ("hooks.example.com", {"ROLLBACKKIT_NOTIFY_SECRET": SECRET}, "url 'hooks.example.com' is not an http(s) URL"),
        ("https://hooks.example.com/x", {"ROLLBACKKIT_NOTIFY_SECRET": ""}, "ROLLBACKKIT_NOTIFY_SECRET is not set"),
    ):
        result = run_cli("demo", "--dir", str(tmp_path / "demo"), "--notify", url, cwd=tmp_path, env=env)
        assert result.returncode == 1 and said in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "demo").exists()
