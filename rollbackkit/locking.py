"""The repository lock, and fault-injection checkpoints for crash tests.

Every command that writes to git, DVC or the journal holds one exclusive file lock per
repository, so two concurrent ``register`` calls serialise and exactly one of them can win a
given version.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollbackkit.errors import LockTimeout

CRASH_ENV = "ROLLBACKKIT_CRASH_AT"
DEFAULT_TIMEOUT_S = 60.0


@contextmanager
def repo_lock(lock_file: Path, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold the repository's exclusive lock, waiting at most ``timeout`` seconds."""
    from filelock import FileLock, Timeout

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise LockTimeout(
            f"Another rollbackkit command has held {lock_file} for over {timeout:.0f} s.",
            "Wait for it to finish, or check that no stuck process holds it.",
        ) from exc
    try:
        yield
    finally:
        lock.release()


def held(path: Path) -> bool:
    """Whether another open file holds the ``flock`` of ``path`` (tried without blocking, released at
    once; a missing file is not held). A server holds its lock file while it serves."""
    try:
        fd = os.open(path, os.O_RDONLY)  # never created here
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return True
        raise
    finally:
        os.close(fd)  # releases the lock if it was taken
    return False


def checkpoint(step: str) -> None:
    """Kill this process with SIGKILL if ``ROLLBACKKIT_CRASH_AT`` names ``step``.

    Only the crash-safety tests set the variable; it simulates ``kill -9`` between steps.
    """
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
