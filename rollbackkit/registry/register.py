"""Register one immutable version: build the bundle, then DVC add, push, commit, tag (last).

Register order (crash-safe): build in scratch space -> move into ``bundles/NAME`` -> DVC
add -> **push** -> ``dvc.yaml`` -> commit -> **tag last**. A process killed at any point
leaves no tag or a complete version; the next mutating command finds the intent record and
puts ``bundles/NAME`` and ``dvc.yaml`` back as HEAD has them
(:func:`rollbackkit.registry.recover.recover_locked`). A commit made just before a crash
stays at HEAD without a tag: not a version until ``rollbackkit recover`` tags it (the intent
record names it once made: :mod:`rollbackkit.registry.intent`), or a retry tags it (same
registration) or commits its own ``bundle.yaml`` on top (another message, trust...:
:mod:`rollbackkit.registry.interrupted`).
The intent record stays until the journal record is written: a kill between the tag and the
record leaves the next command the proof to append it. A register of another version on top of
such an untagged commit buries it (recover tags only HEAD): it says so in a note and records the
commit as ``buried`` in its journal record.

Uncommitted changes: register commits only ``bundles/NAME/`` and ``dvc.yaml``. It refuses
when ``dvc.yaml`` has uncommitted edits (they would be swept in); other work in the tree is
never touched or committed. ``bundles/NAME/`` belongs to rollbackkit.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.bundle.manifest import Manifest
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import DirtyWorkspace, InvalidInput, VersionExists
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import Reference, Version, validate_name
from rollbackkit.registry import people
from rollbackkit.registry.intent import clear_intent, write_intent
from rollbackkit.registry.interrupted import at_head, manifest_at, register_subject, registration_changes, trust_record
from rollbackkit.registry.materialise import swap_dir
from rollbackkit.registry.recover import recover_locked
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.restore import refuse_foreign
from rollbackkit.registry.tags import registration_message, version_tag

if TYPE_CHECKING:
    import pandas as pd

    from rollbackkit.registry.mlflow_source import Fetched

# The crash points of a register, in order (tests kill a register at each one).
REGISTER_STEPS = ("staged", "dvc_added", "pushed", "dvc_yaml", "committed", "tagged")


def register(
    repo: Repository,
    name: str,
    model: Any,
    train_data: pd.DataFrame | str | Path | None,
    *,
    target: str | None = None,
    validation_data: pd.DataFrame | str | Path | None = None,
    preprocess: str | Path | None = None,
    serving: str | Path | dict[str, Any] | None = None,
    gates: str | Path | dict[str, Any] | None = None,
    version: str | None = None,
    bump: str = "patch",
    message: str = "",
    trust: Iterable[str] = (),
    features: Iterable[str] | None = None,
    unsafe: bool = False,
    flavor: str | None = None,
    tracking_uri: str | None = None,
) -> VersionInfo:
    """Register one immutable version of bundle ``name`` (see :meth:`Registry.register`)."""
    from rollbackkit.registry.builder import build_bundle
    from rollbackkit.registry.dvcyaml import check_dvc_yaml

    validate_name(name)
    if version is not None:
        version = str(Version.parse(version))
    else:
        Version(0, 0, 0).bump(bump)  # validates ``bump`` before anything is written
    repo.require_initialised()
    # An MLflow model is downloaded (or read) before the lock: its native file, signature and example.
    fetched, download = _from_mlflow(model, train_data, tracking_uri, tuple(trust), unsafe)
    if fetched is not None:
        model, flavor = fetched.model, flavor or fetched.flavor
        features = features if features is not None else fetched.features
        train_data = train_data if train_data is not None else fetched.example
    with repo_lock(repo.paths.lock_file):
        recover_locked(repo)
        version = _next_version(repo, name, version, bump)
        _refuse_dirty(repo, ["dvc.yaml"])
        check_dvc_yaml(repo.root / "dvc.yaml")  # DVC would fail on it halfway through
        repo.journal().check_appendable()  # never a tag without its journal record
        refuse_foreign(repo, repo.paths.bundle_dir(name))
        started = time.perf_counter()
        repo.paths.scratch.mkdir(parents=True, exist_ok=True)
        scratch = repo.paths.scratch / f"{name}-{uuid.uuid4().hex[:8]}"
        notes: list[str] = []  # what the default gates left out, and why
        buries = _buries(repo, name, version, notes)
        try:
            manifest = build_bundle(
                scratch,
                name=name,
                version=version,
                model=model,
                train_data=train_data,
                target=target,
                validation_data=validation_data,
                preprocess=preprocess,
                serving=serving,
                gates=gates,
                author=people.actor(repo.root),
                message=message,
                trust=tuple(trust),
                origin=_repo_relative(repo, preprocess),
                features=list(features) if features is not None else None,
                unsafe=unsafe,
                flavor=flavor,
                notes=notes,
            )
            info, manifest = _commit_bundle(repo, scratch, manifest, fetched.origin.trailer() if fetched else "", notes)
            info = dataclasses.replace(info, notes=tuple(notes))
        except BaseException:
            recover_locked(repo)  # put bundles/NAME and dvc.yaml back as HEAD has them
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if download is not None:
                download.cleanup()
        try:
            repo.journal().append(
                "register",
                name=name,
                version=version,
                tag=info.tag,
                commit=info.commit,
                bundle_id=info.bundle_id,
                seconds=round(time.perf_counter() - started, 4),
                **trust_record(manifest),
                **({"source": fetched.origin.uri} if fetched is not None else {}),
                **({"buried": buries} if buries else {}),
            )
        except BaseException:  # never a tag without its record; the intent keeps the commit for recover
            repo.git.run("tag", "-d", info.tag, check=False)
            raise
        clear_intent(repo)
        return info


def _buries(repo: Repository, name: str, version: str, notes: list[str]) -> str:
    """HEAD when it is an interrupted register's untagged commit of another version, which this register's
    commit will bury (recover tags only HEAD), said in ``notes``; else ``""``."""
    found = at_head(repo)
    if found is None or (found.name, found.version) == (name, version):
        return ""
    notes.append(
        f"an interrupted register left commit {found.commit[:7]} holding {found.tag}, untagged; this commit goes on "
        f"top of it, so 'rollbackkit recover' can no longer finish it (register {found.tag} again to make it a version)"
    )
    return found.commit


def _next_version(repo: Repository, name: str, version: str | None, bump: str) -> str:
    existing = {v.version for v in repo.versions(name)}
    if version is not None:
        if version in existing or repo.git.tag_exists(version_tag(name, version)):
            raise VersionExists(
                f"{name}@{version} is already registered; versions are immutable.",
                "Register a new version (e.g. --bump patch) instead.",
            )
        return version
    if not existing:
        return "v0.0.1"
    latest = max(Version.parse(v) for v in existing)
    return str(Version(latest.major, latest.minor, latest.patch).bump(bump))


def _refuse_dirty(repo: Repository, paths: list[str]) -> None:
    dirty = repo.git.dirty_paths(paths)
    if dirty:
        raise DirtyWorkspace(
            f"{', '.join(dirty)} has uncommitted changes that would be swept into the register commit.",
            "Commit or stash them first.",
        )


def _repo_relative(repo: Repository, path: str | Path | None) -> str:
    """``path`` relative to the repo root when it lies inside it, else ``""``."""
    if path is None:
        return ""
    try:
        return Path(path).resolve().relative_to(repo.root.resolve()).as_posix()
    except ValueError:
        return ""


def _from_mlflow(
    model: Any, train_data: Any, tracking_uri: str | None, trust: tuple[str, ...], unsafe: bool
) -> tuple[Fetched | None, tempfile.TemporaryDirectory[str] | None]:
    """An MLflow source fetched into a temporary directory, or (None, None) for any other model.

    Raises:
        InvalidInput: No training data, and the model is not from MLflow or logged no input example
            of at least ``mlflow_source.MIN_EXAMPLE_ROWS`` rows.
    """
    from rollbackkit.registry import mlflow_source

    if not mlflow_source.is_source(model):
        if train_data is None:
            raise InvalidInput(
                "No training data: pass --train-data (.csv or .parquet).",
                "Only an MLflow model (--model models:/NAME/N) can do without it, through its input example.",
            )
        return None, None
    download = tempfile.TemporaryDirectory(prefix="rollbackkit-mlflow-")
    try:
        fetched = mlflow_source.fetch(model, tracking_uri, Path(download.name), trust, unsafe)
    except BaseException:
        download.cleanup()
        raise
    if train_data is None:
        try:
            mlflow_source.training_example(fetched)  # present, and enough rows to stand in for training data
        except BaseException:
            download.cleanup()
            raise
    return fetched, download


def _commit_bundle(
    repo: Repository, scratch: Path, manifest: Manifest, source: str, notes: list[str]
) -> tuple[VersionInfo, Manifest]:
    """Move the built bundle into place, DVC add + push, commit, tag (in that order).

    Returns the version and the manifest its tag's commit holds (the one the tag message and the
    journal record describe: an interrupted register's, when the retry reuses its commit).
    """
    from rollbackkit.registry.dvcyaml import declare_artifact

    name, version = manifest.name, manifest.version
    rel = ProjectPaths.bundle_relpath(name)
    dest = repo.paths.bundle_dir(name)
    intent = {"op": "register", "name": name, "version": version, "head": repo.git.head()}
    write_intent(repo, intent)
    swap_dir(scratch, dest)
    checkpoint("staged")
    dvc_parts = [c for c in manifest.components.values() if c.storage == "dvc"]
    repo.dvc.add([dest / c.path for c in dvc_parts])
    checkpoint("dvc_added")
    repo.dvc.push(c.md5 for c in dvc_parts)
    checkpoint("pushed")
    declare_artifact(repo.root / "dvc.yaml", name, f"{rel}/{manifest.components['model'].path}", manifest)
    checkpoint("dvc_yaml")
    reused = _interrupted_commit(repo, [rel, "dvc.yaml"], manifest, source)
    if reused is not None:
        commit, manifest = reused
    else:
        commit = repo.git.commit_paths([rel, "dvc.yaml"], _commit_message(repo, manifest, source, notes))
    write_intent(repo, {**intent, "commit": commit})  # recover's proof that this register made it
    checkpoint("committed")
    tag = version_tag(name, version)
    reg = manifest.registration
    said = registration_message(name, version, manifest.bundle_id, commit, reg.message, source)
    repo.git.create_tag(tag, commit, said)
    checkpoint("tagged")
    info = repo.find(Reference(name=name, version=version))
    return dataclasses.replace(info, raw_inputs=reg.raw_inputs), manifest


def _commit_message(repo: Repository, manifest: Manifest, source: str, notes: list[str]) -> str:
    """The register commit's message: its subject, what it supersedes (also told in ``notes``), and
    the source trailer last (``recover`` reads it back to write the tag an interrupted register lacks)."""
    body = [source] if source else []
    found = at_head(repo)
    if found is not None and (found.name, found.version) == (manifest.name, manifest.version):
        first = manifest_at(repo, found)
        changed = registration_changes(first, manifest) if first is not None else ["bundle.yaml"]
        if first is not None and first.bundle_id != manifest.bundle_id:
            changed.append("bundle id")
        if first is not None and first.ignored:
            changed.append(f"registration (fields this release does not read: {', '.join(first.ignored)})")
        said = f"{', '.join(changed) or 'source'}"
        body.insert(0, f"Supersedes {found.commit[:12]}, an interrupted register of this version with another {said}.")
        notes.append(
            f"an interrupted register of {found.tag} left commit {found.commit[:7]} with another {said}; "
            "it stays in history untagged, and the tag is on a new commit that records what this register asked"
        )
    return "\n\n".join([register_subject(manifest.name, manifest.version), *body])


def _interrupted_commit(
    repo: Repository, paths: list[str], manifest: Manifest, source: str
) -> tuple[str, Manifest] | None:
    """HEAD and its manifest when HEAD is the untagged commit of an interrupted register of this very
    bundle with this very registration, else None.

    A register killed after its commit leaves that commit untagged at HEAD, and recover keeps it. A retry
    that builds the same bundle (the same bundle id) and asks the same registration (message, trust,
    unsafe, author...: its time always differs) puts ``paths`` back as that commit has them and tags it,
    instead of a second commit. A retry that asks otherwise gets a commit of its own on top: a tag on the
    first commit would record the first attempt's settings, not the ones asked. So does one whose first
    commit holds registration fields this release ignores (a newer rollbackkit's): the retry never saw them.
    """
    found = at_head(repo)
    if found is None or (found.name, found.version) != (manifest.name, manifest.version) or found.source != source:
        return None
    theirs = manifest_at(repo, found)
    if theirs is None or theirs.ignored or theirs.bundle_id != manifest.bundle_id:
        return None
    if registration_changes(theirs, manifest):
        return None
    repo.git.run("checkout", found.commit, "--", *paths)
    return found.commit, theirs
