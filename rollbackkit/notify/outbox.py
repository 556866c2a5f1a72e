"""The durable outbox: one JSON file per (notice, target) under ``.rollbackkit/local/outbox/``.

:meth:`Outbox.put` writes the file (atomically) before any attempt, so a notice outlives the
process that made it: a server delivers what a CLI process left there. A deliverer
:meth:`Outbox.claim` s an entry with a non-blocking ``flock`` (released by the OS if the process
dies), so two processes never send the same entry at once; the entry is removed after its final
outcome, and a claim re-checks that the file is still there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollbackkit.notify.message import Notice


@dataclass
class Entry:
    """One notice for one target, with its delivery so far."""

    notice: Notice
    target: str
    attempts: int = 0
    next_at: float = 0.0  # unix time of the next attempt
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON."""
        said = {"notice": self.notice.to_dict(), "target": self.target, "attempts": self.attempts}
        return said | {"next_at": self.next_at, "last_error": self.last_error}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """The entry :meth:`to_dict` wrote."""
        notice = Notice.from_dict(data["notice"])
        return cls(notice, str(data["target"]), int(data["attempts"]), float(data["next_at"]), str(data["last_error"]))


class Outbox:
    """The outbox directory of one project."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, notice: Notice, target: str) -> Path:
        """The file of ``notice`` for ``target`` (named from :attr:`Notice.order`: names sort as they happened)."""
        return self.directory / f"{notice.order}.{notice.id}.{target}.json"

    def put(self, entry: Entry) -> Path:
        """Write ``entry`` (atomically: a reader never sees half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(entry.notice, entry.target)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "w") as fh:
            fh.write(json.dumps(entry.to_dict(), default=str))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
        return path

    def entries(self, target: str = "*") -> list[Path]:
        """The waiting entries' files (of ``target``; all by default), in the order their notices happened."""
        try:
            found = [p for p in self.directory.glob(f"*.{target}.json") if not p.name.startswith(".")]
        except OSError:
            return []
        return sorted(found, key=lambda p: p.name)

    def counts(self, suffix: str = ".json") -> dict[str, int]:
        """Entries per target (one directory listing): waiting ones, or with ``suffix=".bad"`` the unreadable ones."""
        counts: dict[str, int] = {}
        try:
            names = [e.name for e in os.scandir(self.directory)]
        except OSError:
            return counts
        for name in names:
            if name.endswith(suffix) and not name.startswith("."):
                target = name.split(".")[-2]
                counts[target] = counts.get(target, 0) + 1
        return counts

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[Claim | None]:
        """Hold ``path`` for delivery (None: another process holds it, or it is gone or unreadable)."""
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                same = os.stat(path).st_ino == os.fstat(fd).st_ino  # not removed (nor replaced) meanwhile
            except OSError:
                same = False
            if not same:
                yield None
                return
            with os.fdopen(os.dup(fd), "r") as fh:
                text = fh.read()
            try:
                entry = Entry.from_dict(json.loads(text))
            except (ValueError, KeyError, TypeError):
                os.replace(path, path.with_suffix(".bad"))  # kept for a person; never retried
                yield None
                return
            yield Claim(path, fd, entry)
        finally:
            os.close(fd)


@dataclass
class Claim:
    """An entry held for delivery: :meth:`save` its progress or :meth:`done` with it."""

    path: Path
    fd: int
    entry: Entry

    def save(self) -> None:
        """Rewrite the entry in place (the lock stays on the same file)."""
        data = json.dumps(self.entry.to_dict(), default=str).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    def done(self) -> None:
        """Remove the entry (its final outcome is journaled)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
