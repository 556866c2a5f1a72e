"""A user's day through the Python API: what served when (``history``), what serves now
(``serving_state``, as ``serve`` says it resumes) and whether the journal is intact (``verify_journal``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rollbackkit
from rollbackkit.errors import VersionNotFound
from rollbackkit.ops.history import serving_state


def test_history_and_state_after_a_deploy_and_a_rollback(two_versions: Path) -> None:
    repo = two_versions
    rollbackkit.deploy(repo, "cancer@v1.0.0", "prod", reason="first release")
    rollbackkit.deploy(repo, "cancer@v1.1.0", "prod", reason="boosted trees")
    rollbackkit.rollback(repo, "cancer", "prod", reason="recall dropped", incident="INC-7")

    done = rollbackkit.history(repo, "cancer", "prod")
    assert isinstance(done, rollbackkit.AssignmentHistory)
    assert [(a.action, a.version) for a in done.assignments] == [
        ("deploy", "v1.0.0"),
        ("deploy", "v1.1.0"),
        ("rollback", "v1.0.0"),
    ]
    assert [after.version for _, after in done.states] == ["v1.0.0", "v1.1.0", "v1.0.0"]
    assert done.states[-1][1].rolled_back_from == frozenset({"v1.1.0"})
    as_json = json.loads(json.dumps(done.to_dict()))
    assert (as_json["name"], as_json["env"]) == ("cancer", "prod")
    assert [a["incident"] for a in as_json["assignments"]] == ["", "", "INC-7"]

    now = serving_state(repo, "cancer", "prod")
    assert (now.version, now.canary, now.shadow) == ("v1.0.0", None, None)
    assert serving_state(repo, "cancer", "staging").version is None  # never deployed: serve starts it empty
    with pytest.raises(VersionNotFound, match="staging"):  # but its history is a typo, said so
        rollbackkit.history(repo, "cancer", "staging")


def test_verify_journal_finds_an_edited_line(two_versions: Path) -> None:
    repo = two_versions
    rollbackkit.deploy(repo, "cancer@v1.0.0", "prod", reason="first release")

    intact = rollbackkit.verify_journal(repo)
    assert isinstance(intact, rollbackkit.JournalCheck)
    assert intact.ok and intact.problems == ()
    assert intact.entries == 4  # two registrations, the deploy's restore and the deploy
    assert intact.to_dict() == {"ok": True, "entries": 4, "problems": []}

    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"cancer"', '"cancor"', 1)  # someone rewrites what was registered
    journal.write_text("".join(lines))

    broken = rollbackkit.verify_journal(repo)
    assert not broken.ok and broken.entries == 4
    assert [(p.line, p.problem) for p in broken.problems] == [(2, "content does not match its hash (edited)")]
    assert broken.to_dict()["problems"] == [{"line": 2, "problem": "content does not match its hash (edited)"}]
