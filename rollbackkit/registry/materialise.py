"""Writing a version's files into a directory, each verified before it lands, and the record of
which files rollbackkit wrote there (so a later restore may replace them and nothing else).

A restore into ``--to DIR`` leaves :data:`RESTORE_MARKER` in DIR; a restore into the workspace
(``bundles/NAME``) keeps its record under ``.rollbackkit/local/restored/NAME.json``, since git's
HEAD may not track what it wrote.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest, atomic_write, copy_verified, md5_file
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError, InvalidPath
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.contents import ensure_cached
from rollbackkit.registry.repository import Repository

RESTORE_MARKER = ".rollbackkit-restore.json"
_RESTORE_FORMAT = "rollbackkit/restore@1"


def materialise(repo: Repository, info: VersionInfo, manifest: Manifest, dest: Path, workspace: bool) -> list[str]:
    """Write a version's files into ``dest``, verifying each before it lands.

    ``workspace``: ``dest`` is ``bundles/NAME`` (every file the commit holds there) rather
    than a ``--to`` directory (the manifest and its components only).
    """
    base = ProjectPaths.bundle_relpath(info.name)
    ensure_cached(repo, (c.md5 for c in manifest.components.values() if c.storage == "dvc"), info.tag)
    staging = dest.with_name(f".{dest.name}.rbk-restore-{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise InvalidPath(
            f"Cannot write next to {dest}: {exc.strerror}.", "Choose a directory you can write to."
        ) from exc
    try:
        tree = (
            repo.git.ls_tree(info.commit, base)
            if workspace
            else [f"{base}/{MANIFEST_FILE}"]
            + [f"{base}/{c.path}" for c in manifest.components.values() if c.storage == "git"]
        )
        for path, blob in repo.git.blobs(info.commit, tree).items():
            target = staging / path[len(base) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob or b"")
        for comp in manifest.components.values():
            if comp.storage == "git" and md5_file(staging / comp.path) != comp.md5:
                raise IntegrityError(
                    f"{info.tag}: {comp.path} in git does not match its manifest.",
                    "Run 'rollbackkit verify --all'.",
                )
            if comp.storage == "dvc":
                copy_verified(repo.dvc.cache_path(comp.md5), staging / comp.path, comp.md5)
        verified = {c.path: c.md5 for c in manifest.components.values()}
        if not workspace:
            write_restore_marker(staging, info, verified)
        else:  # which files rollbackkit put there, for restore.refuse_foreign (git's HEAD may not track them)
            record = workspace_record(repo, info.name)
            record.parent.mkdir(parents=True, exist_ok=True)
            write_restore_marker(staging, info, verified, record)
        swap_dir(staging, dest)
    except OSError as exc:
        raise InvalidPath(
            f"Restoring into {dest} failed: {exc.strerror or exc} ({exc.filename or dest}).",
            "Check the space and permissions there; nothing was replaced.",
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and p.name != RESTORE_MARKER)


def swap_dir(src: Path, dest: Path) -> None:
    """Replace ``dest`` with ``src`` (a rename when possible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.rbk-old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
        src.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        src.rename(dest)


def workspace_record(repo: Repository, name: str) -> Path:
    """Where the files the last workspace restore of ``bundles/NAME`` wrote are listed."""
    return repo.paths.local / "restored" / f"{name}.json"


def write_restore_marker(
    directory: Path, info: VersionInfo, verified: dict[str, str], marker: Path | None = None
) -> None:
    """Record which files a restore wrote (with their md5), so a later one may replace them.

    ``verified`` holds the md5 of files already hashed on their way in (not hashed again).
    The record goes into ``directory`` (``restore --to``) unless ``marker`` says where.
    """
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            rel = path.relative_to(directory).as_posix()
            files[rel] = verified.get(rel) or md5_file(path)
    record = {"format": _RESTORE_FORMAT, "tag": info.tag, "files": files}
    atomic_write(marker or directory / RESTORE_MARKER, json.dumps(record, indent=1, sort_keys=True) + "\n")


def restored_files(directory: Path, name: str = RESTORE_MARKER) -> dict[str, str] | None:
    """The files an earlier restore recorded in ``directory/name`` (None without a valid record)."""
    marker = directory / name
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        record = json.loads(marker.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    files = record.get("files") if isinstance(record, dict) and record.get("format") == _RESTORE_FORMAT else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    return files
