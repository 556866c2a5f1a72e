"""``rollbackkit recover``: repair the journal, move an unreadable intent record aside, and finish a
register of this clone killed after its commit.

The untagged commit at HEAD gets its tag and journal record once it checks out
(:mod:`rollbackkit.registry.interrupted`), but only when this clone recorded making it: the intent
record names the commit, or a command that reset the workspace since named it in its journal
``recover`` record (``untagged``). A register subject alone (a commit pulled without its tag, a
hand-made one with a manifest that trusts anything) proves nothing: recover refuses it in one line.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rollbackkit.errors import RecoveryUnfinished, RollbackkitError
from rollbackkit.locking import repo_lock
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import Reference
from rollbackkit.registry import interrupted
from rollbackkit.registry.intent import clear_intent, intent_file, read_intent, write_intent
from rollbackkit.registry.journal_chain import digest
from rollbackkit.registry.materialise import materialise
from rollbackkit.registry.proofs import buried_note, commits_past, left_untagged
from rollbackkit.registry.recover import no_commit_recorded, recover_locked, register_again
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.restore import refuse_foreign


def recover(repo: Repository) -> str | None:
    """Finish cleaning up after a register that was killed; returns what was done.

    Also clears what :func:`~rollbackkit.registry.recover.recover_locked` refuses to guess about: an unreadable intent
    record and a damaged journal tail or head are moved aside under names that say why, and
    the move is recorded in the journal. A register of this clone killed after its commit is
    finished: its commit at HEAD is tagged (with the journal record a register writes) once its
    manifest, bundle id and pushed DVC data check out.

    Raises:
        RecoveryUnfinished: HEAD is an untagged register commit that nothing here proves a register
            of this clone made, or that is not a complete version (what was done is said too).
    """
    with repo_lock(repo.paths.lock_file):
        done = repo.journal().repair()
        path = intent_file(repo)
        if path.exists() and read_intent(repo) is None:
            aside = path.with_name(f"{path.name}.unreadable-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
            path.rename(aside)
            repo.journal().append("recover", op="unknown", result=f"moved an unreadable intent record to {aside.name}")
            done.append(
                f"moved the unreadable intent record to {aside.relative_to(repo.root)} "
                "(check 'git status' for a half-written bundles/ directory)"
            )
        try:
            undone = recover_locked(repo, finish=lambda found: _finish(repo, found))  # an intent record's
            done += [undone] if undone else []
            finished = _finish_recorded(repo)  # a commit an earlier command's recover record names
            done += [finished] if finished else []
        except RecoveryUnfinished as exc:  # what was done before is said too
            if done:
                raise RecoveryUnfinished(f"{'; '.join(done)}; but {exc.message}", exc.hint) from None
            raise
        return "; ".join(done) or None


def _finish_recorded(repo: Repository) -> str | None:
    """With no intent record: tag the untagged register commit at HEAD when this clone's journal names it
    (an earlier command's recover record); None when HEAD is no such commit."""
    found = interrupted.at_head(repo)
    if found is None:
        return "; ".join(_buried(repo)) or None
    if _recorded(repo, found, "unproven"):  # an earlier recover already said it could not prove it
        raise RecoveryUnfinished(
            f"{no_commit_recorded(found.tag, found.commit)}.", register_again(found.name, found.version)
        )
    if not _recorded(repo, found, "untagged"):
        raise RecoveryUnfinished(
            f"HEAD {found.commit[:7]} looks like a register commit of {found.tag}, but nothing in this clone "
            "records that a register here made it (pulled without its tag, or written by hand), so recover does "
            "not tag it.",
            register_again(found.name, found.version, "Fetch its tag (git fetch --tags), or run"),
        )
    problem = interrupted.why_unfinishable(repo, found)
    if problem is not None:
        raise RecoveryUnfinished(
            f"register of {found.tag} was interrupted after its commit; HEAD {found.commit[:7]} cannot be made a "
            f"version: {problem.why}.",
            problem.hint or register_again(found.name, found.version),
        )
    # kept until the journal record is written: a kill after the tag leaves proof for the next recover
    intent = {"op": "register", "name": found.name, "version": found.version, "commit": found.commit}
    write_intent(repo, {**intent, "tagging": True})
    done = f"register of {found.tag} was interrupted; {_finish(repo, found)}"
    clear_intent(repo)
    return done


def _buried(repo: Repository) -> list[str]:
    """Notes on the untagged commits of this clone's register that later commits now hide (recover tags only
    HEAD): a note, not a refusal, so a recover run to repair the journal still succeeds. Not one whose version
    was registered since, nor one a register said it buried."""
    registered, told = repo.registrations(), {e.get("buried") for e in repo.journal().entries() if e.get("buried")}
    return [
        buried_note(left.tag, left.commit, past)
        for left in left_untagged(repo.paths, repo.git, repo.journal())
        if (past := commits_past(repo.git, left.commit)) and left.tag not in registered and left.commit not in told
    ]


def _recorded(repo: Repository, found: interrupted.Interrupted, field: str) -> bool:
    """Whether this clone's journal names ``found``'s commit as a register's in a recover record's ``field``
    (``untagged``: left untagged by our register; ``unproven``: its intent named no commit), and its tag was
    never recorded (a deleted tag is verify's finding, not one to make again)."""
    if found.tag in repo.registrations():
        return False
    return any(
        entry.get("event") == "recover"
        and entry.get(field) == found.commit
        and entry.get("name") == found.name
        and entry.get("version") == found.version
        and entry.get("hash") == digest(entry)
        for entry in repo.journal().entries()
    )


def _finish(repo: Repository, found: interrupted.Interrupted) -> str:
    """Tag the interrupted register's commit at HEAD (checked by the caller) and put its files in
    ``bundles/NAME`` unless a file there is not rollbackkit's."""
    done = interrupted.finish(repo, found)
    rel = ProjectPaths.bundle_relpath(found.name)
    try:  # its files in bundles/NAME, as a register leaves them (the version stands either way)
        refuse_foreign(repo, repo.root / rel)
        info = repo.find(Reference(name=found.name, version=found.version))
        materialise(repo, info, repo.read_manifest(info), repo.root / rel, workspace=True)
    except RollbackkitError as exc:
        why, how = exc.message.rstrip("."), exc.hint.rstrip(".")  # refuse_foreign's hints end "and retry"
        how = how[:1].lower() + how[1:] if how.endswith("retry") else "then retry"
        return f"{done} (its files are not in {rel}: {why}; {how}: 'rollbackkit restore {found.tag}')"
    return done
