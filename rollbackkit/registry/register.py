"""Register one immutable version: build the bundle, then DVC add, push, commit, tag (last).

Register order (crash-safe): build in scratch space -> move into ``bundles/NAME`` -> DVC
add -> **push** -> ``dvc.yaml`` -> commit -> **tag last**. A process killed at any point
leaves no tag or a complete version; the next mutating command finds the intent record and
puts ``bundles/NAME`` and ``dvc.yaml`` back as HEAD has them
(:func:`rollbackkit.registry.recover.recover_locked`). A commit made just before a crash
stays in history without a tag: it is not a version (documented, harmless).

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

from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import DirtyWorkspace, InvalidInput, RollbackkitError, VersionExists
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import Reference, Version, validate_name
from rollbackkit.registry import people
from rollbackkit.registry.materialise import swap_dir
from rollbackkit.registry.recover import clear_intent, recover_locked, write_intent
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
            info = _commit_bundle(repo, scratch, manifest, message, fetched.origin.trailer() if fetched else "")
            info = dataclasses.replace(info, notes=tuple(notes))
        except BaseException:
            recover_locked(repo)  # put bundles/NAME and dvc.yaml back as HEAD has them
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if download is not None:
                download.cleanup()
        repo.journal().append(
            "register",
            name=name,
            version=version,
            tag=info.tag,
            commit=info.commit,
            bundle_id=info.bundle_id,
            seconds=round(time.perf_counter() - started, 4),
            **_trust_record(manifest),
            **({"source": fetched.origin.uri} if fetched is not None else {}),
        )
        return info


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


def _commit_bundle(repo: Repository, scratch: Path, manifest: Manifest, message: str, source: str = "") -> VersionInfo:
    """Move the built bundle into place, DVC add + push, commit, tag (in that order)."""
    from rollbackkit.registry.dvcyaml import declare_artifact

    name, version = manifest.name, manifest.version
    rel = ProjectPaths.bundle_relpath(name)
    dest = repo.paths.bundle_dir(name)
    write_intent(repo, {"op": "register", "name": name, "version": version, "head": repo.git.head()})
    swap_dir(scratch, dest)
    checkpoint("staged")
    dvc_parts = [c for c in manifest.components.values() if c.storage == "dvc"]
    repo.dvc.add([dest / c.path for c in dvc_parts])
    checkpoint("dvc_added")
    repo.dvc.push(c.md5 for c in dvc_parts)
    checkpoint("pushed")
    declare_artifact(repo.root / "dvc.yaml", name, f"{rel}/{manifest.components['model'].path}", manifest)
    checkpoint("dvc_yaml")
    subject = f"rollbackkit: register {name} {version}"
    commit = _interrupted_commit(repo, [rel, "dvc.yaml"], subject, manifest) or repo.git.commit_paths(
        [rel, "dvc.yaml"], subject
    )
    checkpoint("committed")
    tag = version_tag(name, version)
    repo.git.create_tag(tag, commit, registration_message(name, version, manifest.bundle_id, commit, message, source))
    checkpoint("tagged")
    clear_intent(repo)
    info = repo.find(Reference(name=name, version=version))
    return dataclasses.replace(info, raw_inputs=manifest.registration.raw_inputs)


def _interrupted_commit(repo: Repository, paths: list[str], subject: str, manifest: Manifest) -> str | None:
    """HEAD when it is the untagged commit of an interrupted register of this very bundle, else None.

    A register killed after its commit leaves that commit untagged at HEAD, and recover keeps it. A retry
    builds the same bundle: the same bundle id (the registration block, with its time, is not part of it).
    The retry then puts ``paths`` back as that commit has them and tags it, instead of a second commit.
    """
    head = repo.git.head()
    if head is None or repo.git.run("log", "-1", "--format=%s", head).decode().strip() != subject:
        return None
    try:
        theirs = Manifest.from_yaml(repo.git.run("show", f"{head}:{paths[0]}/{MANIFEST_FILE}"))
    except RollbackkitError:
        return None
    if (theirs.bundle_id, theirs.version) != (manifest.bundle_id, manifest.version):
        return None
    repo.git.run("checkout", head, "--", *paths)
    return head


def _trust_record(manifest: Manifest) -> dict[str, Any]:
    """What the operator trusted at register, for the journal (nothing when nothing was)."""
    reg = manifest.registration
    return {**({"trust": list(reg.trust)} if reg.trust else {}), **({"unsafe": True} if reg.unsafe else {})}
