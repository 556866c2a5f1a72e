"""An interrupted register's untagged commit at HEAD: find it, compare it with a retry, finish it.

A register killed after its commit (checkpoint ``committed``) leaves HEAD a commit whose subject is
``rollbackkit: register NAME VERSION`` and no tag: its data was pushed before the commit, so that
commit is the whole version but its tag and journal record. ``rollbackkit recover`` finishes it
(:func:`finish`) once it checks out (:func:`why_unfinishable`) and a local record proves a register of
this clone made it (:mod:`rollbackkit.registry.finish_register`): a subject alone proves nothing, anyone can
write one. A retry of the register reuses it only when it asks for the same registration
(:func:`registration_changes` is empty, and the commit's manifest holds no field this release ignores);
otherwise the retry commits its own ``bundle.yaml`` on top, so the tagged commit holds exactly what the
retry asked (the trust a later load enforces is that manifest's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rollbackkit.bundle.forward import NewerFormat
from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import InvalidName, RollbackkitError
from rollbackkit.locking import checkpoint
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import NAME_RE, Version, validate_name
from rollbackkit.registry.proofs import Left
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import registration_message

_TRAILER_PREFIX = "Rollbackkit-"  # a line of the commit body the tag message carries on
_SUBJECT_RE = re.compile(rf"rollbackkit: register (?P<name>{NAME_RE.pattern}) (?P<version>v\S+)")


def register_subject(name: str, version: str) -> str:
    """The subject line of a register's commit."""
    return f"rollbackkit: register {name} {version}"


@dataclass(frozen=True)
class Interrupted(Left):
    """The untagged commit an interrupted register left at HEAD (``commit``: its full hash).

    Attributes:
        source: The trailer of its message naming where the model came from (``""``: none), for the tag.
    """

    source: str


def at_head(repo: Repository) -> Interrupted | None:
    """HEAD when it is a register's commit whose version has no tag, else None."""
    head = repo.git.head()
    found = register_commit(repo, head) if head is not None else None
    return None if found is None or repo.git.tag_exists(found.tag) else found


def register_commit(repo: Repository, commit: str) -> Interrupted | None:
    """``commit`` read as a register's commit (None: its subject is not one, or names an invalid version)."""
    subject, _, body = repo.git.run("log", "-1", "--format=%s%x00%b", commit).decode().partition("\0")
    match = _SUBJECT_RE.fullmatch(subject.strip())
    if match is None or not Version.is_valid(match["version"]):
        return None
    try:
        validate_name(match["name"])  # a hand-written subject may name what no register accepts
    except InvalidName:
        return None
    source = "\n".join(line for line in body.splitlines() if line.startswith(_TRAILER_PREFIX))
    return Interrupted(match["name"], match["version"], commit, source)


def manifest_at(repo: Repository, found: Interrupted) -> Manifest | None:
    """The manifest the interrupted commit holds (None: absent or not a valid manifest)."""
    path = f"{ProjectPaths.bundle_relpath(found.name)}/{MANIFEST_FILE}"
    try:
        return Manifest.from_yaml(repo.git.run("show", f"{found.commit}:{path}"), where=f"{found.commit[:7]}:{path}")
    except RollbackkitError:
        return None


def registration_changes(first: Manifest, retry: Manifest) -> list[str]:
    """The registration fields a retry asks differently from the interrupted commit (its time aside)."""
    mine, theirs = first.registration.model_dump(), retry.registration.model_dump()
    return [key for key in mine if key != "created" and mine[key] != theirs.get(key)]


def trust_record(manifest: Manifest) -> dict[str, Any]:
    """What the operator trusted at register, for the journal (nothing when nothing was)."""
    reg = manifest.registration
    return {**({"trust": list(reg.trust)} if reg.trust else {}), **({"unsafe": True} if reg.unsafe else {})}


@dataclass(frozen=True)
class Unfinishable:
    """Why an interrupted commit cannot be tagged as it is, and the hint when not registering it again."""

    why: str
    hint: str = ""


def why_unfinishable(repo: Repository, found: Interrupted) -> Unfinishable | None:
    """Why the interrupted commit cannot be tagged as it is (None: it is a complete version).

    Complete: its manifest validates, names this version and matches its bundle id, every component
    is in the commit with its hash, and every DVC object is in the DVC remote. A manifest of a newer
    format is not damaged: this rollbackkit cannot read it (upgrade, then recover).
    """
    from rollbackkit.registry.verify import verify

    path = f"{ProjectPaths.bundle_relpath(found.name)}/{MANIFEST_FILE}"
    try:
        manifest = Manifest.from_yaml(repo.git.run("show", f"{found.commit}:{path}"), where=path)
    except NewerFormat:
        return Unfinishable(
            f"its {path} is of a newer format than this rollbackkit reads",
            "Upgrade rollbackkit on this machine, then run 'rollbackkit recover' again.",
        )
    except RollbackkitError:
        return Unfinishable(f"it holds no valid {path}")
    info = _untagged_info(found, manifest)
    report = verify(repo, [info], everything=False)
    if not report.ok:
        return Unfinishable(report.problems[0].problem)
    for comp in manifest.components.values():
        if comp.storage != "dvc":
            continue
        try:
            handle = repo.dvc.remote_open(comp.md5)
        except RollbackkitError as exc:
            return Unfinishable(exc.message.rstrip("."), exc.hint)  # e.g. a clone without init's local remote
        if handle is None:
            return Unfinishable(f"{comp.path} is not in the DVC remote")
        handle.close()
    return None


def finish(repo: Repository, found: Interrupted) -> str:
    """Tag the interrupted commit and write the journal record a register writes (caller holds the lock
    and has checked :func:`why_unfinishable`); returns what was done.

    The tag message is the one the register would have written, from the commit's manifest and the
    source trailer in its body. A failing journal append takes the new tag back: never a tag without its
    record.
    """
    manifest = manifest_at(repo, found)
    assert manifest is not None  # checked by why_unfinishable
    repo.journal().check_appendable()
    message = registration_message(
        found.name, found.version, manifest.bundle_id, found.commit, manifest.registration.message, found.source
    )
    repo.git.create_tag(found.tag, found.commit, message)
    checkpoint("recover_tagged")
    try:
        record_registered(repo, found, manifest)
    except BaseException:
        repo.git.run("tag", "-d", found.tag, check=False)
        raise
    reg = manifest.registration
    trusted = ", ".join([*reg.trust, *(["unsafe formats"] if reg.unsafe else [])])
    said = f" (as its manifest trusts: {trusted})" if trusted else ""
    if manifest.ignored:
        said += f" (its manifest also holds fields this release ignores: {', '.join(manifest.ignored)})"
    return f"tagged {found.tag} on HEAD {found.commit[:7]}, its commit: {found.tag} is a version now{said}"


def record_registered(repo: Repository, found: Interrupted, manifest: Manifest) -> None:
    """Append the journal ``register`` record of a register finished by recover (``recovered: true``)."""
    repo.journal().append(
        "register",
        name=found.name,
        version=found.version,
        tag=found.tag,
        commit=found.commit,
        bundle_id=manifest.bundle_id,
        recovered=True,
        **trust_record(manifest),
        **_source_record(found.source),
    )


def _untagged_info(found: Interrupted, manifest: Manifest) -> VersionInfo:
    """The version the commit would be once tagged (for :func:`~rollbackkit.registry.verify.verify`)."""
    return VersionInfo(
        name=found.name,
        version=found.version,
        bundle_id=manifest.bundle_id,
        created=manifest.registration.created,
        commit=found.commit,
        tag=found.tag,
    )


def _source_record(source: str) -> dict[str, str]:
    """The journal's ``source`` field for a source trailer (an MLflow model's URI), else nothing."""
    if not source:
        return {}
    from rollbackkit.registry.mlflow_source import MlflowOrigin

    origin = MlflowOrigin.from_message(source)
    return {"source": origin.uri} if origin is not None else {}
