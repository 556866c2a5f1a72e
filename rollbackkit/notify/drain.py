"""``python -m rollbackkit.notify.drain ROOT``: deliver a project's outbox, then exit (detached from the CLI)."""

from __future__ import annotations

import sys
from pathlib import Path

from rollbackkit.notify.process import DRAIN_SECONDS, hold_drain_lock, notifier_for, server_running
from rollbackkit.project import ProjectPaths


def main(root: str) -> int:
    """Deliver (with retries) until the outbox is empty, :data:`DRAIN_SECONDS` pass, or a server of
    the project starts (it delivers the rest and counts it in its ``/status`` and ``/metrics``)."""
    paths = ProjectPaths(Path(root))
    if server_running(paths):  # it delivers the outbox, counted
        return 0
    if hold_drain_lock(paths, wait=True) is None:  # detached: waiting for a drain that is ending costs nothing
        return 0
    notifier = notifier_for(paths)
    if notifier is None or notifier.pending() == 0:  # a drain that ended meanwhile delivered it all
        return 0
    left = notifier.drain(DRAIN_SECONDS, until=lambda: server_running(paths))
    notifier.close()
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
