"""While a server of the project runs, a CLI process leaves its notices to it (PROBE21b N3).

A delivery made by a CLI process or a detached drain is counted by nobody Prometheus scrapes:
with a server running, the CLI only writes the outbox and the server delivers and counts; a
drain stops as soon as a server starts.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollbackkit.notify.config import load_targets
from rollbackkit.notify.delivery import Notifier
from rollbackkit.notify.outbox import Outbox
from rollbackkit.notify.process import outbox_dir, server_running
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.journal import Journal

from .story import wait
from .webhooks import SECRET, receiving, refused_url

CLI_SENDS = """
import sys
from pathlib import Path
from rollbackkit.notify import process
from rollbackkit.notify.message import Notice
from rollbackkit.ops.notices import send
from rollbackkit.project import ProjectPaths

send(ProjectPaths(Path(sys.argv[1])), Notice("rollback", "back to v1.0.0", "churn", "prod", "v1.0.0"))
process.hand_off()  # what rollbackkit.cli.main does at exit
"""

NO_DRAIN = "[n.close() for n in process._notifiers.values()]"  # this test runs the drain itself


def _project(tmp_path: Path, url: str, backoff: float = 0.05) -> ProjectPaths:
    (tmp_path / ".rollbackkit").mkdir(exist_ok=True)
    target = f"  - name: oncall\n    url: {url}\n    secret: {SECRET}\n    backoff: {backoff}\n    max_delay: 10\n"
    (tmp_path / ".rollbackkit" / "config.yaml").write_text(f"notify:\n{target}")
    return ProjectPaths(tmp_path)


@contextmanager
def _a_server(paths: ProjectPaths) -> Iterator[None]:
    """What a running ``serve churn --env prod`` leaves: its address record and its held lock."""
    servers = paths.local / "servers"
    servers.mkdir(parents=True, exist_ok=True)
    record = {"url": "http://127.0.0.1:9", "pid": os.getpid(), "name": "churn", "env": "prod"}
    (servers / "churn-prod.json").write_text(json.dumps(record))
    fd = os.open(servers / "churn-prod.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def _outbox(paths: ProjectPaths) -> list[Path]:
    return Outbox(outbox_dir(paths)).entries("oncall")


def test_a_cli_leaves_its_notice_to_the_running_server_which_delivers_and_counts_it(tmp_path: Path) -> None:
    with receiving() as receiver:
        paths = _project(tmp_path, receiver.url)
        server = Notifier(Outbox(outbox_dir(paths)), load_targets(paths), Journal(paths.journal))
        with _a_server(paths):
            assert server_running(paths)
            subprocess.run([sys.executable, "-c", CLI_SENDS, str(tmp_path)], check=True, timeout=60)
            assert len(_outbox(paths)) == 1 and not receiver.delivered  # written for the server, not sent
            time.sleep(1.5)  # no drain started, no CLI worker: still nobody sent it
            assert not receiver.delivered and len(_outbox(paths)) == 1
            server.start()  # the server's notifier scans the outbox for what other processes left
            wait(lambda: len(receiver.delivered) == 1, 10, "the server delivers the CLI's notice", every=0.05)
            wait(lambda: server.status().targets["oncall"].delivered == 1, 5, "counted in its /status", every=0.05)
        server.close(wait=1)
    said = server.status().targets["oncall"]
    assert (said.delivered, said.failed, said.queued) == (1, 0, 0)
    assert [b["summary"] for b in receiver.delivered.values()] == ["back to v1.0.0"]


def test_without_a_server_a_cli_hands_off_to_a_drain_that_stops_when_a_server_starts(tmp_path: Path) -> None:
    from rollbackkit.notify import drain

    paths = _project(tmp_path, refused_url(), backoff=5)  # the receiver is down: the drain retries, for minutes
    assert not server_running(paths)
    Notifier(Outbox(outbox_dir(paths)), load_targets(paths), Journal(paths.journal)).close()
    subprocess.run([sys.executable, "-c", CLI_SENDS.replace("process.hand_off()", NO_DRAIN), str(tmp_path)], check=True)
    assert len(_outbox(paths)) == 1
    done: list[int] = []
    draining = threading.Thread(target=lambda: done.append(drain.main(str(tmp_path))), daemon=True)
    draining.start()
    time.sleep(0.5)
    assert not done  # retrying a refused receiver: it would for DRAIN_SECONDS
    with _a_server(paths):
        draining.join(10)
        assert done, "the drain kept delivering beside the server"
        assert len(_outbox(paths)) == 1  # left for the server, which counts it
        assert drain.main(str(tmp_path)) == 0  # a drain started while a server runs does nothing
