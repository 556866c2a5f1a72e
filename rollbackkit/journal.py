"""Append-only, hash-chained journal (JSON lines, fsync'd) of what actually happened.

Each entry carries the sha256 of the previous one (``prev``) and its own (``hash``) over its
canonical JSON. A head file records the last sequence number and hash, so an edited,
deleted, reordered or truncated line is detected by :meth:`Journal.verify`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollbackkit.bundle import atomic_write

GENESIS = "0" * 64


@dataclass(frozen=True)
class JournalProblem:
    """One inconsistency found by :meth:`Journal.verify`."""

    line: int
    problem: str


def _digest(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Journal:
    """The journal file of one project. Callers hold the repository lock while appending.

    Args:
        path: The ``journal.jsonl`` file (created on first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + ".head")

    def entries(self) -> list[dict[str, Any]]:
        """All entries, oldest first (malformed lines are skipped here; see verify)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def _head(self) -> tuple[int, str]:
        """Sequence number and hash recorded in the head file (0 and genesis if none)."""
        if not self.head_path.exists():
            return 0, GENESIS
        data = json.loads(self.head_path.read_text())
        return int(data["seq"]), str(data["hash"])

    def _tail(self) -> tuple[int, str]:
        """Sequence and hash of the last complete line; drops a torn tail left by a crash."""
        if not self.path.exists():
            return 0, GENESIS
        with open(self.path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return 0, GENESIS
            fh.seek(max(0, size - 65536))
            tail = fh.read()
            if not tail.endswith(b"\n"):
                # A write torn by a crash never reached fsync or the head: it was never committed.
                cut = tail.rfind(b"\n")
                fh.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)
                tail = tail[: cut + 1] if cut >= 0 else b""
        lines = tail.splitlines()
        if not lines:
            return 0, GENESIS
        last = json.loads(lines[-1])
        return int(last["seq"]), str(last["hash"])

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event; returns the written entry (with ``seq``, ``time``, ``hash``).

        The line is fsync'd before the head file moves, so a crash in between leaves one
        line beyond the head (accepted by :meth:`verify`), never a head beyond the lines.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        seq, prev = self._tail()
        entry: dict[str, Any] = {
            "seq": seq + 1,
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "event": event,
            **fields,
            "prev": prev,
        }
        entry["hash"] = _digest(entry)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write(self.head_path, json.dumps({"seq": entry["seq"], "hash": entry["hash"]}))
        return entry

    def verify(self) -> list[JournalProblem]:
        """Check every link of the chain and the head; empty list means intact."""
        problems: list[JournalProblem] = []
        prev, seq = GENESIS, 0
        hashes: dict[int, str] = {}
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                problems.append(JournalProblem(number, "not valid JSON"))
                continue
            if entry.get("hash") != _digest(entry):
                problems.append(JournalProblem(number, "content does not match its hash (edited)"))
            if entry.get("prev") != prev:
                problems.append(
                    JournalProblem(number, "does not follow the previous line (a line was deleted or reordered)")
                )
            if entry.get("seq") != seq + 1:
                problems.append(JournalProblem(number, f"sequence {entry.get('seq')} where {seq + 1} was expected"))
            prev, seq = entry.get("hash", ""), int(entry.get("seq", seq + 1))
            hashes[seq] = prev
        head_seq, head_hash = self._head()
        if head_seq > seq:
            problems.append(
                JournalProblem(len(lines), f"journal ends at entry {seq} but {head_seq} were written (truncated)")
            )
        elif head_seq and hashes.get(head_seq) != head_hash:
            problems.append(JournalProblem(head_seq, "entry does not match the recorded head (rewritten)"))
        return problems
