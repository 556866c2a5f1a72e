"""Restore a version's files, verified byte for byte, into the workspace or a ``--to`` directory,
never deleting or overwriting a file rollbackkit did not write."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rollbackkit.bundle.manifest import md5_file
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import DirtyWorkspace, InvalidPath, RollbackkitError
from rollbackkit.locking import repo_lock
from rollbackkit.project import refuse_metadata_dir
from rollbackkit.registry.materialise import RESTORE_MARKER, materialise, restored_files, workspace_record
from rollbackkit.registry.recover import recover_locked
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.verify import verified_manifest


@dataclass(frozen=True)
class RestoreResult:
    """What :meth:`Registry.restore` wrote, and how long it took."""

    info: VersionInfo
    directory: Path
    files: list[str]
    seconds: float


def restore(repo: Repository, info: VersionInfo, to: str | Path | None = None) -> RestoreResult:
    """Restore a version's files into the workspace (``bundles/NAME``), or into ``to``."""
    started = time.perf_counter()
    manifest = verified_manifest(repo, info)
    if to is not None:
        dest = _empty_or_bundle_dir(Path(to), repo.root)
        files = materialise(repo, info, manifest, dest, workspace=False)
    else:
        repo.require_initialised()
        with repo_lock(repo.paths.lock_file):
            recover_locked(repo)
            repo.journal().check_appendable()
            dest = repo.paths.bundle_dir(info.name)
            refuse_foreign(repo, dest)
            files = materialise(repo, info, manifest, dest, workspace=True)
            repo.journal().append(
                "restore",
                name=info.name,
                version=info.version,
                commit=info.commit,
                seconds=round(time.perf_counter() - started, 4),
            )
    return RestoreResult(info, dest, files, time.perf_counter() - started)


def refuse_foreign(repo: Repository, dest: Path) -> None:
    """Refuse to replace ``bundles/NAME`` while it holds a file rollbackkit did not write.

    Rollbackkit writes what git tracks there and the DVC outputs beside their ``.dvc``
    files; anything else (a user's notes, a hand-copied model) would be deleted. A tracked
    file with uncommitted changes, or a DVC output whose md5 is not its ``.dvc`` file's,
    would be overwritten: refused too, unless an earlier restore wrote exactly those bytes
    (it restored a version HEAD does not hold).

    Raises:
        InvalidPath: A file there is not rollbackkit's.
        DirtyWorkspace: A file there was edited since it was committed or restored.
    """
    if not dest.is_dir():
        return
    rel = dest.relative_to(repo.root).as_posix()
    tracked = set(repo.git.run("ls-files", "-z", "--", rel).decode(errors="surrogateescape").split("\0"))
    dirty = set(repo.git.dirty_paths([rel]))
    record = workspace_record(repo, dest.name)
    restored = restored_files(record.parent, record.name)
    changed: list[str] = []
    for path in sorted(dest.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(repo.root).as_posix()
        inside = path.relative_to(dest).as_posix()
        written = bool(
            restored and inside in restored and not path.is_symlink() and md5_file(path) == restored[inside]
        )  # an earlier restore wrote it (a version whose files HEAD does not track, or another version's)
        dvc_file = path.with_name(path.name + ".dvc")
        if name in tracked:
            if name in dirty and not written:
                changed.append(name)
        elif dvc_file.is_file():
            if not written and _dvc_out_md5(dvc_file, path.name) != (md5_file(path) if path.is_file() else None):
                changed.append(name)
        elif not written:
            raise InvalidPath(
                f"{name} was not written by rollbackkit; restoring would delete it.",
                f"Move it out of {rel}/ (or commit it elsewhere) and retry.",
            )
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise DirtyWorkspace(
            f"{shown} changed since it was committed or restored; restoring would discard the edit.",
            f"Commit or stash the changes under {rel}/ (git stash; for a DVC output, dvc add or dvc checkout), "
            "then retry.",
        )


def _dvc_out_md5(dvc_file: Path, name: str) -> str | None:
    """The md5 a ``.dvc`` file records for its output ``name`` (None when it records none)."""
    from rollbackkit import yamlsafe

    try:
        data = yamlsafe.load_file(dvc_file)
    except RollbackkitError:
        return None
    outs = data.get("outs") if isinstance(data, dict) else None
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, dict) and out.get("path") == name and isinstance(out.get("md5"), str):
            return str(out["md5"])
    return None


def _empty_or_bundle_dir(path: Path, repo_root: Path) -> Path:
    """Validate a ``--to`` directory: new, empty, or an earlier ``restore --to`` left as it wrote it.

    Replacing the directory deletes what is in it, so anything rollbackkit did not write
    there (another file, or one of its files changed since) makes it refuse.
    """
    refuse_metadata_dir(path, repo_root, "--to")
    resolved = path.expanduser().resolve()
    root = repo_root.resolve()
    for owned, why in ((root / ".rollbackkit", "rollbackkit's own state"), (root / "bundles", "the workspace")):
        if owned in (resolved, *resolved.parents):
            raise InvalidPath(
                f"--to {path} is inside {owned.relative_to(root)}/ ({why}).",
                "Restore into the workspace without --to, or choose a directory elsewhere.",
            )
    if not resolved.exists():
        return resolved
    if not resolved.is_dir():
        raise InvalidPath(f"--to {path} exists and is not a directory.", "Choose a new or empty directory for --to.")
    try:
        present = sorted(resolved.rglob("*"))
    except OSError as exc:
        raise InvalidPath(
            f"--to {path} cannot be read: {exc.strerror}.", "Choose a directory you can write to."
        ) from exc
    if not present:
        return resolved
    recorded = restored_files(resolved)
    if recorded is None:
        raise InvalidPath(
            f"--to {path} holds files that an earlier 'rollbackkit restore --to' did not write (no {RESTORE_MARKER}).",
            "Choose a new or empty directory for --to; nothing was changed.",
        )
    parents = {parent.as_posix() for rel in recorded for parent in Path(rel).parents}
    for item in present:
        rel = item.relative_to(resolved).as_posix()
        if item.is_dir() and not item.is_symlink() and rel in parents:
            continue
        if rel == RESTORE_MARKER:
            continue
        if item.is_symlink() or rel not in recorded or md5_file(item) != recorded[rel]:
            raise InvalidPath(
                f"--to {path} holds {rel}, which the earlier restore there did not write (or it was changed since).",
                "Move it elsewhere or choose another directory; nothing was changed.",
            )
    return resolved
