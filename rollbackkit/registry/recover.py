"""Crash recovery: the intent record a register leaves while it works, and undoing what a killed
one left uncommitted.

Register writes ``.rollbackkit/local/intents/current.json`` before it touches the workspace
and removes it after the tag. Every mutating command runs :func:`recover_locked` first (under
the repository lock): with a record present and no tag, it puts ``bundles/NAME`` and
``dvc.yaml`` back as HEAD has them; it also sweeps the scratch folders killed commands left.
``rollbackkit recover`` (:func:`recover`) also finishes a register killed after its commit:
the untagged commit at HEAD, once it checks out, gets its tag and journal record
(:mod:`rollbackkit.registry.interrupted`).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import MANIFEST_FILE, atomic_write
from rollbackkit.errors import RollbackkitError, UnreadableRecord
from rollbackkit.locking import repo_lock
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry import interrupted
from rollbackkit.registry.materialise import materialise
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import version_tag


def intent_file(repo: Repository) -> Path:
    """Where a register in progress records what it is doing."""
    return repo.paths.intents / "current.json"


def write_intent(repo: Repository, record: dict[str, Any]) -> None:
    """Record a register about to touch the workspace (read back by :func:`recover_locked`)."""
    atomic_write(intent_file(repo), json.dumps(record))


def clear_intent(repo: Repository) -> None:
    """The register finished: nothing to undo."""
    intent_file(repo).unlink(missing_ok=True)


def recover(repo: Repository) -> str | None:
    """Finish cleaning up after a register that was killed; returns what was done.

    Also clears what :func:`recover_locked` refuses to guess about: an unreadable intent
    record and a damaged journal tail or head are moved aside under names that say why, and
    the move is recorded in the journal. A register killed after its commit is finished: its
    commit at HEAD is tagged (with the journal record a register writes) once its manifest,
    bundle id and pushed DVC data check out; otherwise the result says why and what to do.
    """
    with repo_lock(repo.paths.lock_file):
        done = repo.journal().repair()
        path = intent_file(repo)
        if path.exists() and _read_intent(repo) is None:
            aside = path.with_name(f"{path.name}.unreadable-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
            path.rename(aside)
            repo.journal().append("recover", op="unknown", result=f"moved an unreadable intent record to {aside.name}")
            done.append(
                f"moved the unreadable intent record to {aside.relative_to(repo.root)} "
                "(check 'git status' for a half-written bundles/ directory)"
            )
        finished = recover_locked(repo, finish=True)
        if finished:
            done.append(finished)
        return "; ".join(done) or None


def _read_intent(repo: Repository) -> dict[str, str] | None:
    """The intent record, or None when it is not one that :func:`write_intent` wrote."""
    try:
        record = json.loads(intent_file(repo).read_bytes().decode("utf-8"))
        if not isinstance(record, dict) or record.get("op") != "register":
            return None
        name, version = validate_name(record["name"]), record["version"]
        version_tag(name, version)
    except (OSError, ValueError, KeyError, TypeError, RollbackkitError):
        return None
    return {"op": "register", "name": name, "version": str(version)}


def recover_locked(repo: Repository, *, finish: bool = False) -> str | None:
    """Undo what an interrupted register left uncommitted (caller holds the lock); with ``finish``
    (``rollbackkit recover``), also tag the untagged commit of a register killed after its commit.

    Raises:
        UnreadableRecord: The intent record is garbage; ``rollbackkit recover`` moves it aside.
    """
    swept = _sweep_scratch(repo)
    note = f"removed {swept} scratch folder(s) left by killed commands" if swept else None
    path = intent_file(repo)
    if not path.exists():
        found = interrupted.at_head(repo) if finish else None
        finished = f"register of {found.tag} was interrupted; {_finish(repo, found)}" if found else None
        return "; ".join(part for part in (finished, note) if part) or None
    record = _read_intent(repo)
    if record is None:
        raise UnreadableRecord(
            f"{path} is not an intent record rollbackkit wrote; it cannot tell what to undo.",
            "Run 'rollbackkit recover' (it moves the file aside), then check 'git status'.",
        )
    repo.journal().check_appendable()
    name = record["name"]
    tag = version_tag(name, record["version"])
    if repo.git.tag_exists(tag):
        done = f"register of {tag} had completed; nothing to undo"
    else:
        _reset_to_head(repo, name)
        found = interrupted.at_head(repo)
        if found is None or found.tag != tag:
            done = f"register of {tag} was interrupted; bundles/{name} and dvc.yaml reset to HEAD"
        elif finish:
            done = f"register of {tag} was interrupted after its commit; {_finish(repo, found)}"
        else:
            done = (
                f"register of {tag} was interrupted; HEAD {found.commit[:7]} is its commit, left without a tag, "
                f"so {tag} is not a version yet (run 'rollbackkit recover' to tag it, or register it again); "
                f"bundles/{name} and dvc.yaml are as that commit has them"
            )
    repo.journal().append("recover", op=record["op"], name=name, version=record["version"], result=done)
    clear_intent(repo)
    return f"{done}; {note}" if note else done


def _finish(repo: Repository, found: interrupted.Interrupted) -> str:
    """Tag the interrupted register's commit at HEAD when it checks out; else say why not and what to do."""
    problem = interrupted.why_unfinishable(repo, found)
    if problem is not None:
        return (
            f"HEAD {found.commit[:7]} is its commit, left without a tag, and cannot be made a version: {problem} "
            f"(register {found.tag} again: it makes a new commit)"
        )
    done = interrupted.finish(repo, found)
    rel = ProjectPaths.bundle_relpath(found.name)
    try:  # its files in bundles/NAME, as a register leaves them (the version stands either way)
        info = repo.find(Reference(name=found.name, version=found.version))
        materialise(repo, info, repo.read_manifest(info), repo.root / rel, workspace=True)
    except RollbackkitError as exc:
        return f"{done} (its files are not in {rel}: {exc.message.rstrip('.')}; run 'rollbackkit restore {found.tag}')"
    return done


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
