"""The REAL demo (`rollbackkit demo --notify`, what `make demo` runs), run ONCE per test run.

The story takes about a minute: tests/test_demo.py (the story, the DVC pipeline, gto),
tests/test_notify_demo.py (each event reaches a receiver that was down) and tests/test_jupyterlab.py
(the explore notebook in JupyterLab) read the same run, even on different xdist workers: the first
worker to ask runs it (tests.conftest.shared_template) and saves what its receiver saw next to the
project; the others read that. The receiver on 127.0.0.1 refuses its first 3 attempts; the run waits
for every event of the story and an empty outbox (what did not come is noted, for the notification
test to fail on: the story's own test does not depend on it). The project is read-only for the
tests (test_demo runs `dvc repro` on its own copy).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli, shared_template
from .story import wait
from .webhooks import SECRET, receiving

STORY = {"deploy", "canary", "auto-rollback", "runbook"}  # no gate-failed (traffic moved), no paused (grace)
"""The events the demo's story sends: each must arrive exactly once."""

SAVED = "demo-run.json"
"""What the run and its receiver saw, next to the project (``<root>/demo`` and ``<root>/demo-run.json``)."""


@dataclass(frozen=True)
class Received:
    """What the demo's webhook receiver saw (:class:`tests.webhooks.Receiver`'s record, once it stopped)."""

    attempts: list[str]
    delivered: dict[str, dict[str, Any]]
    duplicates: list[str]
    bad_signatures: list[str]

    def events(self) -> Counter[str]:
        """How many verified deliveries of each event."""
        return Counter(body["event"] for body in self.delivered.values())


@dataclass(frozen=True)
class DemoRun:
    """One finished `rollbackkit demo --notify` and what its receiver saw."""

    target: Path
    result: subprocess.CompletedProcess[str]
    receiver: Received
    journal: str  # .rollbackkit/local/journal.jsonl once every notice was delivered
    config: str  # .rollbackkit/config.yaml
    not_notified: list[str]  # what the waits for the events and the empty outbox timed out on


_RUNS: list[DemoRun] = []


def notified_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The run's demo (made by the first test that asks on any worker; a failed run is retried by the next)."""
    if not _RUNS:
        target = shared_template(tmp_path_factory, "notified-demo", _run)
        saved = json.loads((target.parent / SAVED).read_text())
        result = subprocess.CompletedProcess(saved["args"], saved["returncode"], saved["stdout"], saved["stderr"])
        received = Received(**saved["receiver"])
        _RUNS.append(DemoRun(target, result, received, saved["journal"], saved["config"], saved["not_notified"]))
    return _RUNS[0]


def _run(root: Path) -> Path:
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
    with receiver.lock:
        received = Received(
            list(receiver.attempts), dict(receiver.delivered), list(receiver.duplicates), list(receiver.bad_signatures)
        )
    saved = {
        "args": [str(a) for a in result.args] if isinstance(result.args, list) else str(result.args),
        "returncode": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "receiver": asdict(received),
        "journal": (local / "local/journal.jsonl").read_text(),
        "config": (local / "config.yaml").read_text(),
        "not_notified": not_notified,
    }
    (root / SAVED).write_text(json.dumps(saved))
    return target
