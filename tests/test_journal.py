"""The journal is append-only and hash-chained: edits, deletions and truncation are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbackkit.registry.journal import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.jsonl")
    for i in range(5):
        j.append("register", name="churn", version=f"v1.0.{i}")
    return j


def test_an_intact_journal_verifies(journal: Journal) -> None:
    assert journal.verify() == []
    assert [e["seq"] for e in journal.entries()] == [1, 2, 3, 4, 5]


def test_an_edited_line_is_caught(journal: Journal) -> None:
    lines = journal.path.read_text().splitlines()
    lines[2] = lines[2].replace("v1.0.2", "v9.9.9")
    journal.path.write_text("\n".join(lines) + "\n")
    assert [(p.line, "edited" in p.problem) for p in journal.verify()] == [(3, True)]


def test_a_deleted_line_is_caught(journal: Journal) -> None:
    lines = journal.path.read_text().splitlines()
    del lines[1]
    journal.path.write_text("\n".join(lines) + "\n")
    assert any("deleted" in p.problem for p in journal.verify())


def test_a_truncated_tail_is_caught(journal: Journal) -> None:
    lines = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join(lines[:-1]) + "\n")
    assert any("truncated" in p.problem for p in journal.verify())


def test_a_crash_between_line_and_head_is_not_tampering(journal: Journal) -> None:
    head = journal.head_path.read_text()
    journal.append("deploy", version="v2")
    journal.head_path.write_text(head)  # the process died before the head moved
    assert journal.verify() == []
    assert journal.append("rollback", version="v1")["seq"] == 7


def test_a_torn_last_line_is_dropped_on_the_next_append(journal: Journal) -> None:
    with open(journal.path, "a") as fh:
        fh.write('{"seq": 6, "event": "depl')  # killed mid-write: never fsync'd, never headed
    assert journal.verify() == []  # never committed: not a problem of the chain
    entry = journal.append("deploy", version="v2")
    assert entry["seq"] == 7
    assert journal.verify() == []
    repair, last = journal.entries()[-2:]
    assert repair["event"] == "journal-repair" and repair["bytes"] == len('{"seq": 6, "event": "depl')
    assert (journal.path.parent / repair["kept"]).read_text() == '{"seq": 6, "event": "depl'
    assert last["event"] == "deploy"


def test_a_line_appended_while_the_unlocked_check_looks_is_not_damage(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit publish` checks the journal while a server appends (no lock): an append that lands
    between the check's reads (line written, head not yet moved) is the crash window, not damage."""
    head_at_5 = journal.head_path.read_bytes()
    journal.append("notification", target="oncall", outcome="delivered")
    sixth = journal.path.read_bytes().splitlines(keepends=True)[-1]
    journal.path.write_bytes(b"".join(journal.path.read_bytes().splitlines(keepends=True)[:-1]))
    journal.head_path.write_bytes(head_at_5)  # back at entry 5: the append is about to happen
    reads = 0
    real = Journal._tail_entry

    def appending_meanwhile(self: Journal) -> dict | None:
        nonlocal reads
        entry = real(self)
        reads += 1
        if reads == 2:  # the check's second look at the tail: the server's line lands right after it
            with open(self.path, "ab") as fh:
                fh.write(sixth)
        return entry

    monkeypatch.setattr(Journal, "_tail_entry", appending_meanwhile)
    journal.check_appendable()  # was: "ends at entry 6 but its head records entry 5 (rewritten ...)"
    assert reads >= 2
