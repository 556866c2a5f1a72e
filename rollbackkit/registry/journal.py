"""Append-only, hash-chained journal (JSON lines, fsync'd) of what actually happened.

Each entry carries the sha256 of the previous one (``prev``) and its own (``hash``) over its
canonical JSON. A head file records the last sequence number and hash, so an edited,
deleted, reordered or truncated line is detected by :meth:`Journal.verify`.

Appends are serialised across threads and processes by an exclusive lock on a sibling
``journal.jsonl.lock`` held from reading the last hash to the fsync of the head, so
concurrent writers (a server's shifts, CLI commands) never fork the chain. A torn last
line (a crash mid-append: no newline, never committed) is cut off by the next append,
which first records the repair. A last line that is complete but not an entry, or an
unreadable head file, stops appends with one line naming the file until
``rollbackkit recover`` (:meth:`Journal.repair`) moves it aside and records that it did.
Appends also stop when the last line is not the head (nor the one line past it a crash
between the line's fsync and the head's move leaves): a truncated or rewritten journal
would otherwise be hidden by the next entry chaining onto what is left and moving the head.
``rollbackkit recover`` then re-anchors the head on the last line and records what was lost.

The chain's rules live in :mod:`~rollbackkit.registry.journal_chain`, reading the file's end in
:mod:`~rollbackkit.registry.journal_tail`, the repairs in :mod:`~rollbackkit.registry.journal_repair`.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.errors import JournalDamaged
from rollbackkit.registry.journal_chain import GENESIS, JournalProblem, check_chain, digest, link, parse
from rollbackkit.registry.journal_repair import cut_torn_tail, move_damaged_tail, move_head_aside, reanchor_record
from rollbackkit.registry.journal_tail import last_line, torn_tail

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class Journal:
    """The journal file of one project; safe to append to from any thread or process.

    Args:
        path: The ``journal.jsonl`` file (created on first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across threads (a lock per file) and processes (flock on the sibling lock file)."""
        key = str(self.lock_path.resolve())
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
        with thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    def _lines(self) -> list[bytes]:
        return self.path.read_bytes().splitlines() if self.path.exists() else []

    def entries(self) -> list[dict[str, Any]]:
        """All entries, oldest first (malformed lines are skipped here; see verify)."""
        return [entry for line in self._lines() if (entry := parse(line)) is not None]

    def _head(self) -> tuple[int, str]:
        """Sequence number and hash recorded in the head file (0 and genesis if none).

        Raises:
            JournalDamaged: The head file is not what :meth:`append` writes.
        """
        if not self.head_path.exists():
            return 0, GENESIS
        try:
            linked = link(parse(self.head_path.read_bytes()))
        except OSError as exc:
            raise self._damaged(f"{self.head_path} cannot be read ({exc.strerror})") from exc
        if linked is None:
            raise self._damaged(f"{self.head_path} is not a journal head record")
        return linked

    def _damaged(
        self,
        what: str,
        hint: str = "Run 'rollbackkit recover' (it moves the damaged part aside and records the repair).",
    ) -> JournalDamaged:
        return JournalDamaged(f"{what}; nothing can be appended to the journal.", hint)

    def _tail_entry(self) -> dict[str, Any] | None:
        """The last complete line's entry (None for an empty journal).

        Raises:
            JournalDamaged: The last complete line is not an entry.
        """
        start, line = last_line(self.path)
        if line is None:
            return None
        entry = parse(line)
        if link(entry) is None:
            with open(self.path, "rb") as fh:
                number = fh.read(start).count(b"\n") + 1
            raise self._damaged(f"line {number} of {self.path}, the last one, is not a journal entry")
        return entry

    def _tail(self) -> tuple[int, str]:
        """Sequence and hash of the last complete line (0 and genesis if none)."""
        return self._link_or_genesis(self._tail_entry())

    @staticmethod
    def _link_or_genesis(entry: dict[str, Any] | None) -> tuple[int, str]:
        """``entry``'s sequence and hash (0 and genesis for no entry)."""
        linked = link(entry) if entry is not None else None
        return linked if linked is not None else (0, GENESIS)

    def _unanchored(self) -> tuple[tuple[int, str], tuple[int, str]] | None:
        """``(head, tail)`` when the last line is neither the head nor one committed line past it.

        One line past the head, following it (``prev``) and matching its own hash, is the
        crash window of :meth:`append` (line fsync'd, head not yet moved). Anything else is
        a truncated or rewritten journal, or a head that is not this journal's.
        """
        head = self._head()
        entry = self._tail_entry()  # read once: an append may add a line while this looks
        tail = self._link_or_genesis(entry)
        if tail == head:
            return None
        if (
            entry is not None
            and tail[0] == head[0] + 1
            and entry.get("prev") == head[1]
            and entry.get("hash") == digest(entry)
        ):
            return None
        return head, tail

    def _check_anchored(self, head: tuple[int, str], tail: tuple[int, str]) -> None:
        what = "truncated" if tail[0] < head[0] else "rewritten, or its head replaced"
        raise self._damaged(
            f"{self.path} ends at entry {tail[0]} but its head {self.head_path.name} records entry {head[0]} ({what})",
            "Run 'rollbackkit recover' (it re-anchors the head on the last entry and records what was lost).",
        )

    def check_appendable(self) -> None:
        """Raise :class:`JournalDamaged` now if :meth:`append` would refuse.

        Commands call it before they change anything, so a damaged journal stops them
        before a tag or a file is written rather than after. It only reads (no lock, no
        file created): a write in flight has no newline yet and is not looked at.
        """
        self._tail()
        for _ in range(3):  # unlocked: a concurrent append may move the head between the two reads
            before = self._head()
            mismatch = self._unanchored()
            if mismatch is None:
                return
            if self._head() == before:
                self._check_anchored(*mismatch)
        if (mismatch := self._unanchored()) is not None:
            self._check_anchored(*mismatch)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event; returns the written entry (with ``seq``, ``time``, ``hash``).

        The line is fsync'd before the head file moves, so a crash in between leaves one
        line beyond the head (accepted by :meth:`verify`), never a head beyond the lines.

        Raises:
            JournalDamaged: The last complete line is not an entry, the head is unreadable, or
                the last line is not the head (nor one line past it): lines were cut or rewritten.
        """
        with self._locked():
            if (mismatch := self._unanchored()) is not None:
                self._check_anchored(*mismatch)
            repaired = cut_torn_tail(self.path)
            if repaired is not None:
                self._write("journal-repair", repaired)
            return self._write(event, fields)

    def _write(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        seq, prev = self._tail()
        entry: dict[str, Any] = {
            "seq": seq + 1,
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "event": event,
            **fields,
            "prev": prev,
        }
        entry["hash"] = digest(entry)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write(self.head_path, json.dumps({"seq": entry["seq"], "hash": entry["hash"]}))
        return entry

    def repair(self) -> list[str]:
        """Make the journal appendable again; what was done, one sentence each (``rollbackkit recover``).

        A torn last line is cut, complete last lines that are not entries are moved to a
        ``journal.jsonl.corrupt-TIME`` file and an unreadable head to
        ``journal.jsonl.head.unreadable-TIME``; a ``journal-repair`` entry records each
        move with the sha256 of what was moved. A last entry that is not the head (a truncated
        or rewritten journal) gets a ``journal-repair`` entry naming the head it replaces and
        what was lost, and the head moves onto it. Damage before the last entry is left for
        ``journal verify`` to report: it is evidence, and appends do not depend on it.
        """
        done: list[str] = []
        with self._locked():
            repairs: list[dict[str, Any]] = []
            torn = cut_torn_tail(self.path)
            if torn is not None:
                repairs.append(torn)
                done.append(f"cut a torn last line of the journal (kept as {torn['kept']})")
            moved = move_damaged_tail(self.path, self._lines())
            if moved is not None:
                repairs.append(moved)
                done.append(f"moved {moved['lines']} damaged last line(s) of the journal to {moved['kept']}")
            try:
                self._head()
            except JournalDamaged:
                repairs.append(aside := move_head_aside(self.head_path))
                done.append(f"moved the unreadable journal head to {aside['kept']}")
            mismatch = self._unanchored()  # before any entry below moves the head
            if mismatch is not None:
                repairs.append(anchored := reanchor_record(*mismatch))
                done.append(f"re-anchored the journal head on entry {mismatch[1][0]}; lost: {anchored['lost']}")
            for record in repairs:
                self._write("journal-repair", record)
        return done

    def verify(self) -> list[JournalProblem]:
        """Check every link of the chain and the head; empty list means intact."""
        lines = self._lines()
        if torn_tail(self.path)[1]:
            lines = lines[:-1]  # a write torn by a crash: never committed (the head check sees a cut entry)
        chain = check_chain(lines)
        problems, (seq, _), hashes = list(chain.problems), chain.head, chain.hashes
        try:
            head_seq, head_hash = self._head()
        except JournalDamaged:
            return [
                *problems,
                JournalProblem(len(lines), f"{self.head_path.name} is unreadable (run 'rollbackkit recover')"),
            ]
        if head_seq > seq:
            problems.append(
                JournalProblem(len(lines), f"journal ends at entry {seq} but {head_seq} were written (truncated)")
            )
        elif head_seq and hashes.get(head_seq) != head_hash:
            problems.append(JournalProblem(head_seq, "entry does not match the recorded head (rewritten)"))
        return problems
