"""The REAL demo (`rollbackkit demo --notify`, what `make demo` runs), run ONCE per session.

The story takes about a minute: tests/test_demo.py (the story, the DVC pipeline, gto) and
tests/test_notify_demo.py (each event reaches a receiver that was down) read the same run. The
receiver on 127.0.0.1 refuses its first 3 attempts; the run waits for every event of the story and
an empty outbox (what did not come is noted, for the notification test to fail on: the story's
own test does not depend on it), then keeps the journal and config as they were (the demo test's
`dvc repro` comes later, in either order).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import run_cli
from .story import wait
from .webhooks import SECRET, Receiver, receiving

STORY = {"deploy", "canary", "auto-rollback", "runbook"}  # no gate-failed (traffic moved), no paused (grace)
"""The events the demo's story sends: each must arrive exactly once."""


@dataclass(frozen=True)
class DemoRun:
    """One finished `rollbackkit demo --notify` and what its receiver saw."""

    target: Path
    result: subprocess.CompletedProcess[str]
    receiver: Receiver
    journal: str  # .rollbackkit/local/journal.jsonl once every notice was delivered
    config: str  # .rollbackkit/config.yaml
    not_notified: list[str]  # what the waits for the events and the empty outbox timed out on


_RUNS: list[DemoRun] = []


def notified_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The session's demo run (made by the first test that asks; a failed run is retried by the next)."""
    if not _RUNS:
        _RUNS.append(_run(tmp_path_factory.mktemp("demo")))
    return _RUNS[0]


def _run(root: Path) -> DemoRun:
    target = root / "demo"
    with receiving(refuse=3) as receiver:
        result = run_cli(
            "demo", "--dir", str(target), "--notify", receiver.url, cwd=root, env={"ROLLBACKKIT_NOTIFY_SECRET": SECRET}
        )
        assert result.returncode == 0, result.stderr
        outbox = target / ".rollbackkit/local/outbox"
        not_notified = []
        for condition, seconds, what in (
            (lambda: set(receiver.events()) >= STORY, 60, f"every event of the story {sorted(STORY)}"),
            (lambda: not list(outbox.glob("*.json")), 30, "an empty outbox"),
        ):
            try:
                wait(condition, seconds, what, every=0.2)
            except AssertionError as exc:
                not_notified.append(f"{exc} (received: {dict(receiver.events())})")
    local = target / ".rollbackkit"
    journal, config = (local / "local/journal.jsonl").read_text(), (local / "config.yaml").read_text()
    return DemoRun(target, result, receiver, journal, config, not_notified)
