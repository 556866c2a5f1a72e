"""One :class:`~rollbackkit.notify.delivery.Notifier` per project per process, and the detached drain.

A CLI process never waits on a webhook: what it could not deliver before it exits stays in the
outbox, and :func:`hand_off` starts a detached ``python -m rollbackkit.notify.drain`` for it (one
at a time per project); a server running for the project delivers the outbox too.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from rollbackkit.notify.config import load_targets
from rollbackkit.notify.delivery import Notifier
from rollbackkit.notify.message import Notice
from rollbackkit.notify.outbox import Outbox
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.journal import Journal

DRAIN_SECONDS = 900.0  # a detached drain gives up after this (a later server or drain takes over)
_notifiers: dict[Path, Notifier] = {}
_lock = threading.Lock()


def outbox_dir(paths: ProjectPaths) -> Path:
    """``.rollbackkit/local/outbox/``."""
    return paths.local / "outbox"


def notifier_for(paths: ProjectPaths) -> Notifier | None:
    """This process's notifier for the project (None: no ``notify:`` targets).

    The config is read (and validated) on each call: an edited config gets a new notifier, the
    old one is closed (its queue spooled to the outbox, where the new one finds it).

    Raises:
        NotifyConfigError: The ``notify:`` config is malformed, or a secret is missing.
    """
    targets = load_targets(paths)
    root = paths.root.resolve()
    with _lock:
        current = _notifiers.get(root)
        if current is not None and not current.closed and list(current.targets.values()) == targets:
            return current
        if current is not None:
            current.close()
            del _notifiers[root]
        if not targets:
            return None
        notifier = Notifier(Outbox(outbox_dir(paths)), targets, Journal(paths.journal))
        _notifiers[root] = notifier
        return notifier


def notify(paths: ProjectPaths, notice: Notice) -> None:
    """Send ``notice`` through the project's notifier, if it has targets (raises NotifyConfigError)."""
    notifier = notifier_for(paths)
    if notifier is not None:
        notifier.send(notice)


def hand_off() -> None:
    """At a CLI process's exit: spool what is queued and leave undelivered entries to a detached drain."""
    with _lock:
        notifiers = list(_notifiers.items())
    for root, notifier in notifiers:
        if notifier.close(wait=0.0) > 0:
            start_drain(root)


def start_drain(root: Path) -> None:
    """Start ``python -m rollbackkit.notify.drain ROOT`` in its own session, unless one runs already."""
    subprocess.Popen(
        [sys.executable, "-m", "rollbackkit.notify.drain", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def hold_drain_lock(paths: ProjectPaths, *, wait: bool = False) -> int | None:
    """The drain's lock (an fd kept open until exit), or None when another drain holds it (``wait``:
    wait for it instead, so an entry written while that drain was ending is not left behind)."""
    directory = outbox_dir(paths)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".drain.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
