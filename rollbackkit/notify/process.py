"""One :class:`~rollbackkit.notify.delivery.Notifier` per project per process, and the detached drain.

A process that serves uses its server's notifier for the server's lifetime (:func:`hold`): the
runbook it starts and every other notice it sends go through that one, and an edited ``notify:``
only warns (restart ``serve`` to apply it). A CLI process builds its own, and a later edit of
the config gets it a new one.

A CLI process never waits on a webhook. While a server of the project runs (:func:`server_running`)
it only writes its notices to the outbox: the server's notifier picks them up within a second and
delivers, retries and counts them in its ``/status`` and ``/metrics``. With no server, what the
CLI could not deliver before it exits stays in the outbox and :func:`hand_off` starts a detached
``python -m rollbackkit.notify.drain`` for it (one at a time per project), which stops as soon as
a server starts (the server takes over, counted).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from rollbackkit.errors import NotifyConfigError
from rollbackkit.locking import held
from rollbackkit.notify.config import Target, load_targets
from rollbackkit.notify.delivery import Notifier
from rollbackkit.notify.message import Notice
from rollbackkit.notify.outbox import Outbox
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.journal import Journal

DRAIN_SECONDS = 900.0  # a detached drain gives up after this (a later server or drain takes over)
_notifiers: dict[Path, Notifier] = {}
_held: dict[Path, int] = {}  # project root -> servers in this process holding its notifier
_warned: set[Path] = set()  # roots whose held notifier was already said to differ from the config
_lock = threading.Lock()


def outbox_dir(paths: ProjectPaths) -> Path:
    """``.rollbackkit/local/outbox/``."""
    return paths.local / "outbox"


def notifier_for(paths: ProjectPaths) -> Notifier | None:
    """This process's notifier for the project (None: no ``notify:`` targets).

    The config is read (and validated) on each call. While a server of this process holds the
    notifier (:func:`hold`) it is returned as it is (an edited config is one warning line);
    otherwise an edited config gets a new notifier and the old one is closed (its queue spooled
    to the outbox, where the new one finds it).

    Raises:
        NotifyConfigError: The ``notify:`` config is malformed, or a secret is missing (never
            while a server holds the notifier: it keeps serving with the config it started with).
    """
    root = paths.root.resolve()
    with _lock:
        held = _notifiers.get(root) if _held.get(root) else None
    if held is not None:
        _warn_if_edited(paths, root, held)
        return held
    targets = load_targets(paths)
    with _lock:
        current = _notifiers.get(root)
        if current is not None and (_held.get(root) or (not current.closed and _same(current, targets))):
            return current
        if current is not None:
            current.close()
            del _notifiers[root]
        if not targets:
            return None
        notifier = Notifier(Outbox(outbox_dir(paths)), targets, Journal(paths.journal))
        _notifiers[root] = notifier
        return notifier


def hold(paths: ProjectPaths, notifier: Notifier | None) -> Notifier | None:
    """Pin ``notifier`` (serve's, from :func:`notifier_for`) as this process's until :func:`release`:
    :func:`notifier_for` returns it and never closes nor replaces it meanwhile."""
    root = paths.root.resolve()
    with _lock:
        _held[root] = _held.get(root, 0) + 1
        replaced = _notifiers.get(root) if notifier is not None else None
        if notifier is not None:
            _notifiers[root] = notifier
    if replaced is not None and replaced is not notifier:  # the config was edited in between: the server's wins
        replaced.close()
    return notifier


def release(paths: ProjectPaths, wait: float = 0.0) -> None:
    """A server ends: the last one out closes the held notifier (waiting up to ``wait`` s)."""
    root = paths.root.resolve()
    with _lock:
        _held[root] = _held.get(root, 1) - 1
        if _held[root] > 0:
            return
        del _held[root]
        _warned.discard(root)
        notifier = _notifiers.pop(root, None)
    if notifier is not None:
        notifier.close(wait=wait)


def _same(notifier: Notifier, targets: list[Target]) -> bool:
    return list(notifier.targets.values()) == targets


def _warn_if_edited(paths: ProjectPaths, root: Path, held: Notifier) -> None:
    """One warning line (once per server) when the config no longer says what the held notifier does."""
    try:
        edited = not _same(held, load_targets(paths))
    except NotifyConfigError:
        edited = True
    with _lock:
        if not edited or root in _warned:
            return
        _warned.add(root)
    print(
        "warning: notify: changed in the config; this server keeps its targets (restart serve to apply).",
        file=sys.stderr,
    )


def notify(paths: ProjectPaths, notice: Notice) -> None:
    """Send ``notice`` through the project's notifier, if it has targets (raises NotifyConfigError).

    Outside a server, while a server of the project runs, it is only written to the outbox: that
    server delivers it and counts it (a delivery it never saw would be missing from its metrics)."""
    notifier = notifier_for(paths)
    if notifier is not None:
        with _lock:
            serving_here = bool(_held.get(paths.root.resolve()))
        notifier.send(notice, deliver=serving_here or not server_running(paths))


def server_running(paths: ProjectPaths) -> bool:
    """Whether a server (or replica) of the project runs on this host: an address record in
    ``.rollbackkit/local/servers/`` whose ``.lock`` a process holds (``flock``; the convention of
    :func:`rollbackkit.serving.server.lock_file`: a record nobody holds the lock for is stale)."""
    directory = paths.local / "servers"
    try:
        records = list(directory.glob("*.json"))
    except OSError:
        return False
    return any(_lock_held(record.with_suffix(".lock")) for record in records)


def _lock_held(path: Path) -> bool:
    """:func:`rollbackkit.locking.held`, any error reading the lock being "no server"."""
    try:
        return held(path)
    except OSError:
        return False
    return False


def hand_off() -> None:
    """At a CLI process's exit: spool what is queued; what is left goes to the project's running
    server (it scans the outbox), else to a detached drain."""
    with _lock:  # a server's notifier is its own to close
        notifiers = [(root, n) for root, n in _notifiers.items() if not _held.get(root)]
    for root, notifier in notifiers:
        if notifier.close(wait=0.0) > 0 and not server_running(ProjectPaths(root)):
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
