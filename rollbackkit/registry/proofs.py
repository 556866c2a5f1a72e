"""The local records proving a register of this clone made a commit it left without a tag, and where
that commit stands now.

Two records prove it: the intent record naming the commit (``commit``, :mod:`rollbackkit.registry.intent`)
and a journal ``recover`` record naming it ``untagged``. Recover reads them before it tags a commit; the
not-registered message (:meth:`~rollbackkit.registry.repository.Repository.find`) names such a commit of the
version asked for. This module imports no :class:`Repository` (which reads it), so it takes its parts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rollbackkit.errors import RollbackkitError
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import validate_name
from rollbackkit.registry.gitrepo import Git
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.journal_chain import digest
from rollbackkit.registry.tags import version_tag

_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def intent_path(paths: ProjectPaths) -> Path:
    """Where a register in progress records what it is doing."""
    return paths.intents / "current.json"


def parse_intent(path: Path) -> dict[str, str] | None:
    """The intent record at ``path`` (``commit`` and ``tagging`` are ``""`` when absent), or None when it
    is not one rollbackkit wrote."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(record, dict) or record.get("op") != "register":
            return None
        name, version = validate_name(record["name"]), record["version"]
        version_tag(name, version)
        commit = record.get("commit", "")
        if commit and not (isinstance(commit, str) and _COMMIT_RE.fullmatch(commit)):
            return None
    except (OSError, ValueError, KeyError, TypeError, RollbackkitError):
        return None
    tagging = "yes" if record.get("tagging") is True else ""
    return {"op": "register", "name": name, "version": str(version), "commit": commit, "tagging": tagging}


@dataclass(frozen=True)
class Left:
    """A commit a register of this clone made and left without a tag (its version has none)."""

    name: str
    version: str
    commit: str

    @property
    def tag(self) -> str:
        """The registration tag it lacks."""
        return version_tag(self.name, self.version)


def left_untagged(paths: ProjectPaths, git: Git, journal: Journal) -> list[Left]:
    """The commits this clone's records prove a register made, whose version has no tag, newest first."""
    found: list[Left] = []
    record = parse_intent(intent_path(paths)) if intent_path(paths).exists() else None
    if record is not None and record["commit"]:
        found.append(Left(record["name"], record["version"], record["commit"]))
    for entry in reversed(journal.entries()):
        commit, name, version = entry.get("untagged"), entry.get("name"), entry.get("version")
        if entry.get("event") != "recover" or not all(isinstance(x, str) for x in (commit, name, version)):
            continue
        if entry.get("hash") == digest(entry) and _COMMIT_RE.fullmatch(str(commit)):
            found.append(Left(str(name), str(version), str(commit)))
    unique = {left.commit: left for left in reversed(found)}  # the newest record of each commit
    return [left for left in reversed(unique.values()) if not git.tag_exists(left.tag)]


def commits_past(git: Git, commit: str) -> int | None:
    """How many commits HEAD is past ``commit`` (0: HEAD is it), None when HEAD's history lacks it."""
    if git.head() == commit:
        return 0
    if not git.succeeds("merge-base", "--is-ancestor", commit, "HEAD"):
        return None
    return int(git.text("rev-list", "--count", f"{commit}..HEAD"))


def buried(tag: str, commit: str, past: int) -> str:
    """What an untagged register commit ``past`` commits under HEAD is (recover cannot tag it there)."""
    return f"the commit an interrupted register left for {tag}, {commit[:7]}, is now HEAD~{past}, under later commits"


def register_command(name: str, version: str) -> str:
    """The command that registers ``name`` at ``version`` again (its other options elided), quoted."""
    return f"'rollbackkit register {name} --version {version} ...'"


def again(tag: str) -> str:
    """The hint for a version whose untagged commit recover cannot finish."""
    name, _, version = tag.partition("@")
    return f"Register it again ({register_command(name, version)}): it makes a commit of its own."


def buried_note(tag: str, commit: str, past: int) -> str:
    """What recover says (a note, not a refusal: its other work stands) of an untagged commit under HEAD."""
    how = again(tag)
    return f"{buried(tag, commit, past)}, so recover cannot finish it ({how[:1].lower()}{how[1:].rstrip('.')})"


def interrupted_note(paths: ProjectPaths, git: Git, journal: Journal, tag: str) -> tuple[str, str] | None:
    """For the not-registered message: the untagged commit an interrupted register of ``tag`` left in
    HEAD's history, and the hint (what to do), else None."""
    try:
        for left in left_untagged(paths, git, journal):
            past = commits_past(git, left.commit) if left.tag == tag else None
            if past == 0:
                return f"an interrupted register left commit {left.commit[:7]} for {tag}", "Run 'rollbackkit recover'."
            if past is not None:
                return f"{buried(tag, left.commit, past)}, where recover cannot finish it", again(tag)
    except (OSError, RollbackkitError):
        return None  # the message stays what it was
    return None
