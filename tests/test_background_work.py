"""Work after a traffic change (an MLflow alias move) never holds the lock a rollback needs.

An on-call's deploy through the server's admin API is recorded, then the alias follows. If
MLflow is slow or down, the watchdog's rollback must not wait behind that network call; the
moves must still happen in the order the changes were made, and a failed one is counted in
``GET /status`` without undoing the change.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rollbackkit.serving.environment import ServingEnvironment


def test_a_slow_alias_move_runs_after_the_lock_in_the_order_of_the_changes(served: Path) -> None:
    moved: list[str] = []
    lock_held: list[bool] = []
    live_when_done: list[str] = []
    hook_started = threading.Event()
    environment: ServingEnvironment

    def slow_hook(answer: dict[str, Any]) -> dict[str, Any]:
        lock_held.append(environment._ops.locked())  # the lock a gate breach's rollback takes
        hook_started.set()
        time.sleep(0.5)  # MLflow slow to answer
        live_when_done.append(environment.status()["live"]["version"])
        moved.append(answer["assignment"]["version"])
        return {"ok": True, "alias": "champion"}

    environment = ServingEnvironment(served, "churn", "prod", on_assignment=slow_hook)
    environment.start()
    environment.deploy("v1.1.0", reason="boosted")
    hook_started.clear()
    first = threading.Thread(target=environment.deploy, args=("v1.0.0",), kwargs={"reason": "again"})
    first.start()
    assert hook_started.wait(30)
    answer = environment.rollback(reason="bad scores")  # while the deploy's alias move is still under way
    first.join(30)
    assert lock_held == [False, False, False]
    assert live_when_done[1] == "v1.1.0"  # the rollback moved traffic during the deploy's slow alias move
    assert moved == ["v1.1.0", "v1.0.0", "v1.1.0"]  # and the alias followed in the order of the changes
    assert answer["mlflow_alias"] == {"ok": True, "alias": "champion"}
    assert environment.status()["background"] == {
        "failures": 0,
        "last_failure": None,
        "pending": [],
        "gate_history_dropped": {"repeat": 0, "change": 0, "write_failed": 0, "not_built": 0},
    }


def test_a_failed_alias_move_is_counted_and_the_change_stands(served: Path) -> None:
    def down(answer: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("MLflow at http://127.0.0.1:9 refused the connection")

    environment = ServingEnvironment(served, "churn", "prod", on_assignment=down)
    environment.start()
    answer = environment.deploy("v1.1.0", reason="boosted")
    assert answer["status"]["live"]["version"] == "v1.1.0"
    background = environment.status()["background"]
    assert background["failures"] == 1 and "refused the connection" in background["last_failure"]
    assert environment._ops.acquire(timeout=0.1) and environment.background.order.acquire(timeout=0.1)


def test_a_listener_that_raises_is_counted_and_the_next_listener_still_hears_the_event(tmp_path):
    """A broken terminal line or metric never fails an operation, and never goes unseen."""
    from rollbackkit.serving.background import Background
    from rollbackkit.serving.recording import Recording
    from rollbackkit.serving.status import TrafficEvent

    heard: list[str] = []
    recording = Recording()
    recording.background = Background()
    recording.on_event = lambda event: (_ for _ in ()).throw(RuntimeError("terminal gone"))
    recording.listeners = [lambda event: heard.append(event.kind)]
    recording.notify(TrafficEvent("rollback", "churn", "prod", "v1.0.0"))
    assert heard == ["rollback"]
    status = recording.background.status()
    assert status["failures"] == 1 and "terminal gone" in status["last_failure"]
