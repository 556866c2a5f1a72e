"""Repairs of a journal's damaged end, each returning the ``journal-repair`` record that says what it did.

A torn last line is cut (or completed when only its newline is missing), complete last lines that
are not entries and an unreadable head file are moved aside under names that say why, and a head
that is not on the last entry is re-anchored. The bytes moved are kept beside the journal and their
sha256 recorded. :meth:`rollbackkit.registry.journal.Journal.repair` runs them under the journal's
lock (``rollbackkit recover``); :meth:`~rollbackkit.registry.journal.Journal.append` cuts a torn tail.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.registry.journal_chain import digest, link, parse
from rollbackkit.registry.journal_tail import torn_tail


def _stamp() -> str:
    """The time part of a moved-aside file's name."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _fsynced(path: Path, mode: str, data: bytes | None = None, size: int | None = None) -> None:
    with open(path, mode) as fh:
        if data is not None:
            fh.write(data)
        if size is not None:
            fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def cut_torn_tail(path: Path) -> dict[str, Any] | None:
    """Complete or cut off a last line without its newline; what to record, if anything.

    A write torn by a crash never reached fsync or the head: it was never committed, so
    it is cut (its bytes kept beside the journal). A whole entry that lost only its
    newline is completed instead.
    """
    offset, torn = torn_tail(path)
    if not torn:
        return None
    entry = parse(torn)
    if entry is not None and link(entry) is not None and entry.get("hash") == digest(entry):
        _fsynced(path, "ab", b"\n")
        return None
    kept = path.with_name(f"{path.name}.torn-{_stamp()}")
    atomic_write(kept, torn)
    _fsynced(path, "rb+", size=offset)
    return {
        "repair": "cut a torn last line (a write interrupted by a crash, never committed)",
        "bytes": len(torn),
        "sha256": hashlib.sha256(torn).hexdigest(),
        "kept": kept.name,
    }


def move_damaged_tail(path: Path, lines: list[bytes]) -> dict[str, Any] | None:
    """Move the complete last ``lines`` that are not entries to ``journal.jsonl.corrupt-TIME``."""
    keep = len(lines)
    while keep and link(parse(lines[keep - 1])) is None:
        keep -= 1
    if keep == len(lines):
        return None
    damaged = b"".join(line + b"\n" for line in lines[keep:])
    kept = path.with_name(f"{path.name}.corrupt-{_stamp()}")
    atomic_write(kept, damaged)
    atomic_write(path, b"".join(line + b"\n" for line in lines[:keep]))
    return {
        "repair": "moved damaged last lines aside (not journal entries)",
        "lines": len(lines) - keep,
        "first_line": keep + 1,
        "bytes": len(damaged),
        "sha256": hashlib.sha256(damaged).hexdigest(),
        "kept": kept.name,
    }


def move_head_aside(head_path: Path) -> dict[str, Any]:
    """Move an unreadable head file to ``journal.jsonl.head.unreadable-TIME``."""
    kept = head_path.with_name(f"{head_path.name}.unreadable-{_stamp()}")
    data = head_path.read_bytes() if head_path.is_file() else b""
    os.replace(head_path, kept)
    return {
        "repair": "moved an unreadable journal head aside",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kept": kept.name,
    }


def reanchor_record(head: tuple[int, str], tail: tuple[int, str]) -> dict[str, Any]:
    """The record of moving the head ``(seq, hash)`` onto the last entry ``tail``, with what was lost."""
    (head_seq, head_hash), (tail_seq, tail_hash) = head, tail
    if head_seq == 0:
        lost = "unknown (no readable head: the last entry is taken as it is)"
    elif tail_seq < head_seq:
        lost = f"entries {tail_seq + 1}..{head_seq} (the journal was truncated)"
    else:
        lost = f"the head's entry {head_seq} (lines were rewritten or the head replaced)"
    return {
        "repair": "re-anchored the head on the last entry",
        "lost": lost,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "tail_seq": tail_seq,
        "tail_hash": tail_hash,
    }
