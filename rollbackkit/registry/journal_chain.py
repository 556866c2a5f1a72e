"""The journal's hash chain, as rules over lines: an entry's digest, its link, a whole chain's check.

Each entry carries the sha256 of the previous one (``prev``) and its own (``hash``) over its
canonical JSON, and a sequence number (``seq``). :func:`check_chain` applies these rules to the
journal file (:class:`rollbackkit.registry.journal.Journal`) and to a published export of it
(``rollbackkit audit verify``) alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
"""The ``prev`` of the first entry."""


@dataclass(frozen=True)
class JournalProblem:
    """One inconsistency found by :meth:`Journal.verify`."""

    line: int
    problem: str


def digest(entry: dict[str, Any]) -> str:
    """The sha256 of an entry's canonical JSON, its ``hash`` field left out."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse(line: bytes) -> dict[str, Any] | None:
    """The entry on one line, or None when it is not valid UTF-8 JSON of an object."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def link(entry: dict[str, Any] | None) -> tuple[int, str] | None:
    """``(seq, hash)`` of an entry a new one can follow, None when it is not an entry."""
    if entry is None:
        return None
    seq, hashed = entry.get("seq"), entry.get("hash")
    if type(seq) is not int or seq < 1 or not isinstance(hashed, str) or len(hashed) != 64:
        return None
    return seq, hashed


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`check_chain` found in a journal's lines.

    Attributes:
        problems: One per broken link (empty: the chain holds).
        head: ``(seq, hash)`` of the last entry followed (``(0, GENESIS)``: none).
        entries: The entries read, in order (lines that are not one are left out).
        hashes: Each sequence number's hash, as followed.
    """

    problems: list[JournalProblem]
    head: tuple[int, str]
    entries: list[dict[str, Any]]
    hashes: dict[int, str]


def check_chain(lines: Iterable[bytes]) -> ChainCheck:
    """Check the hash chain of a journal's lines (the journal file, or a published export of it).

    Each line must be a JSON entry whose ``hash`` covers its content, whose ``prev`` is the line
    before's hash and whose ``seq`` follows; a broken link is one problem, and the check goes on
    from that entry's own link (one damaged line is one or two problems, not a cascade).
    """
    problems: list[JournalProblem] = []
    prev, seq = GENESIS, 0
    hashes: dict[int, str] = {}
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        entry = parse(line)
        if entry is None:
            problems.append(JournalProblem(number, "not valid JSON"))
            continue
        entries.append(entry)
        if entry.get("hash") != digest(entry):
            problems.append(JournalProblem(number, "content does not match its hash (edited)"))
        if entry.get("prev") != prev:
            problems.append(
                JournalProblem(number, "does not follow the previous line (a line was deleted or reordered)")
            )
        if entry.get("seq") != seq + 1:
            problems.append(JournalProblem(number, f"sequence {entry.get('seq')} where {seq + 1} was expected"))
        linked = link(entry)
        prev, seq = (linked[1], linked[0]) if linked else (str(entry.get("hash", "")), seq + 1)
        hashes[seq] = prev
    return ChainCheck(problems, (seq, prev), entries, hashes)
