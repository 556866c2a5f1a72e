"""Crash recovery: undoing what a killed register left uncommitted, before every mutating command.

Register keeps an intent record (:mod:`rollbackkit.registry.intent`) while it works. Every mutating
command runs :func:`recover_locked` first (under the repository lock): with a record present and no
tag, it puts ``bundles/NAME`` and ``dvc.yaml`` back as HEAD has them, and names the record's commit,
left untagged, in its journal ``recover`` record (``untagged``: the proof a later ``rollbackkit
recover`` needs to tag it, :mod:`rollbackkit.registry.finish_register`); with the tag present but no
journal record, it appends that record; it also sweeps the scratch folders killed commands left.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable

from rollbackkit.bundle.manifest import MANIFEST_FILE
from rollbackkit.errors import RecoveryUnfinished, UnreadableRecord
from rollbackkit.project import ProjectPaths
from rollbackkit.registry import interrupted
from rollbackkit.registry.intent import clear_intent, intent_file, read_intent, unrecorded_tag
from rollbackkit.registry.materialise import materialise
from rollbackkit.registry.proofs import buried_note, commits_past, register_command
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import version_tag

Finisher = Callable[[interrupted.Interrupted], str]
"""Tags an interrupted register's commit that checks out; returns what it did (``rollbackkit recover``'s)."""


def recover_locked(repo: Repository, *, finish: Finisher | None = None) -> str | None:
    """Undo what an interrupted register left uncommitted (caller holds the lock); with ``finish``
    (``rollbackkit recover``'s), also have the untagged commit of a register of this clone killed after
    its commit tagged (``finish`` tags a commit that checks out and says what it did).

    Raises:
        UnreadableRecord: The intent record is garbage; ``rollbackkit recover`` moves it aside.
        RecoveryUnfinished: With ``finish``: an untagged register commit at HEAD is not proven this
            clone's, or is not a complete version (the workspace is reset and recorded first).
    """
    swept = _sweep_scratch(repo)
    note = f"removed {swept} scratch folder(s) left by killed commands" if swept else None
    path = intent_file(repo)
    if not path.exists():
        return note
    record = read_intent(repo)
    if record is None:
        raise UnreadableRecord(
            f"{path} is not an intent record rollbackkit wrote; it cannot tell what to undo.",
            "Run 'rollbackkit recover' (it moves the file aside), then check 'git status'.",
        )
    repo.journal().check_appendable()
    name, version, commit = record["name"], record["version"], record["commit"]
    tag = version_tag(name, version)
    untagged, unproven, refused = "", "", ""  # our commit left untagged (a later recover's proof); why not finished
    hint = register_again(name, version)
    if repo.git.tag_exists(tag):
        done = _record_tagged(repo, record)
    else:
        if not record["tagging"]:  # a recover that was only tagging left the workspace alone
            _reset_to_head(repo, name)
        found = interrupted.at_head(repo)
        past = commits_past(repo.git, commit) if commit and (found is None or found.tag != tag) else None
        if past:  # HEAD moved on: a tag there would not be on HEAD, and the workspace is another commit's
            untagged, done = commit, buried_note(tag, commit, past)  # a note: the journal's record is the proof
        elif found is None or found.tag != tag:
            done = f"register of {tag} was interrupted; bundles/{name} and dvc.yaml reset to HEAD"
        elif not commit:  # an earlier release's intent record, or a kill right after the commit
            unproven = found.commit
            done = refused = no_commit_recorded(tag, found.commit)
        elif found.commit != commit:
            done = refused = (
                f"register of {tag} was interrupted; HEAD {found.commit[:7]} is a commit of it that this clone "
                "did not record making, so it stays untagged"
            )
        elif finish is None:
            untagged = found.commit
            done = (
                f"register of {tag} was interrupted; HEAD {found.commit[:7]} is its commit, left without a tag, "
                f"so {tag} is not a version yet (run 'rollbackkit recover' to tag it, or register it again); "
                f"bundles/{name} and dvc.yaml are as that commit has them"
            )
        elif (problem := interrupted.why_unfinishable(repo, found)) is not None:
            untagged, hint = found.commit, problem.hint or hint
            done = refused = (
                f"register of {tag} was interrupted after its commit; HEAD {found.commit[:7]} cannot be made "
                f"a version: {problem.why}"
            )
        else:
            done = f"register of {tag} was interrupted after its commit; {finish(found)}"
    repo.journal().append(
        "recover",
        op=record["op"],
        name=name,
        version=version,
        result=done,
        **({"untagged": untagged} if untagged else {}),
        **({"unproven": unproven} if unproven else {}),
    )
    clear_intent(repo)
    if refused and finish is not None:
        raise RecoveryUnfinished(f"{refused}.", hint)
    return f"{done}; {note}" if note else done


def _record_tagged(repo: Repository, record: dict[str, str]) -> str:
    """The intent's tag exists: append its journal record when the kill came before it."""
    tag = version_tag(record["name"], record["version"])
    found = interrupted.register_commit(repo, record["commit"]) if unrecorded_tag(repo, record) else None
    manifest = interrupted.manifest_at(repo, found) if found is not None and found.tag == tag else None
    if found is None or manifest is None:
        return f"register of {tag} had completed; nothing to undo"
    interrupted.record_registered(repo, found, manifest)
    return f"register of {tag} was interrupted after its tag, before its journal record: recorded it"


def register_again(name: str, version: str, first: str = "Run") -> str:
    """The hint: register again (a retry asking the same registration reuses the commit)."""
    return (
        f"{first} {register_command(name, version)} again: asking the same registration tags "
        "that commit, asking otherwise makes one of its own."
    )


def no_commit_recorded(tag: str, commit: str) -> str:
    """Why recover leaves an interrupted register's commit whose intent record named no commit."""
    return (
        f"register of {tag} was interrupted; HEAD {commit[:7]} may be its complete commit, but its intent record "
        "names no commit (an earlier rollbackkit wrote it, or the kill came right after the commit), and without "
        "that proof recover does not tag it"
    )


def _sweep_scratch(repo: Repository) -> int:
    """Remove what killed commands left in scratch space (caller holds the lock).

    Register builds in ``.rollbackkit/local/tmp/`` and restore stages next to
    ``bundles/NAME`` only while they hold the repository lock, so whatever is there now
    belongs to a process that died.
    """
    leftovers = [p for p in repo.paths.scratch.iterdir()] if repo.paths.scratch.is_dir() else []
    bundles = repo.root / "bundles"
    if bundles.is_dir():
        leftovers += [p for p in bundles.iterdir() if re.fullmatch(r"\..+\.rbk-(restore|old)-[0-9a-f]{8}", p.name)]
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return len(leftovers)


def _reset_to_head(repo: Repository, name: str) -> None:
    """Put ``bundles/NAME`` and ``dvc.yaml`` back exactly as HEAD has them."""
    rel = ProjectPaths.bundle_relpath(name)
    head = repo.git.head()
    for path in (rel, "dvc.yaml"):
        if head and repo.git.has_path(head, path):
            repo.git.run("restore", "--source=HEAD", "--staged", "--worktree", "--", path)
        else:
            repo.git.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", path)
    shutil.rmtree(repo.root / rel, ignore_errors=True)
    if head and repo.git.has_path(head, f"{rel}/{MANIFEST_FILE}"):
        head_info = next((v for v in repo.versions(name) if v.commit == head), None)
        if head_info is not None:
            materialise(repo, head_info, repo.read_manifest(head_info), repo.root / rel, workspace=True)
        else:
            repo.git.run("restore", "--source=HEAD", "--worktree", "--", rel)
    if not (head and repo.git.has_path(head, "dvc.yaml")):
        (repo.root / "dvc.yaml").unlink(missing_ok=True)
