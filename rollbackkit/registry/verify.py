"""Integrity: a version's tag against its commit and the journal, its manifest against its id,
every component against its hash (git blobs, the local DVC cache, the DVC remote).

:func:`verified_manifest` is what every reader of a version goes through;
:func:`verify` is ``rollbackkit verify`` (one version, or all with the journal's deleted tags).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rollbackkit.bundle.forward import NewerFormat
from rollbackkit.bundle.manifest import Manifest, md5_bytes, md5_file
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import tag_version


@dataclass(frozen=True)
class Problem:
    """One integrity problem found by :meth:`Registry.verify`."""

    version: str
    component: str
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`Registry.verify`; ``ok`` when no problem was found."""

    checked: list[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every checked version is intact."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"ok", "checked", "problems": [...]}``."""
        return {"ok": self.ok, "checked": self.checked, "problems": [asdict(p) for p in self.problems]}


def verified_manifest(repo: Repository, info: VersionInfo) -> Manifest:
    """The manifest of a version, read from git (no checkout) once its tag and hashes check out.

    Raises:
        NewerFormat: The tag checks out but a newer rollbackkit may have written the manifest
            (its own advice kept: upgrade rollbackkit, not "do not use this version").
        IntegrityError: The tag, the manifest or a git-stored component does not check out.
    """
    problems = check_manifest(repo, info)
    if problems and problems[0].component == "manifest":
        try:
            repo.read_manifest(info)
        except NewerFormat as exc:
            raise NewerFormat(f"{info.tag}: {exc.message}", exc.hint) from exc
    if problems:
        raise IntegrityError(
            f"{info.tag}: {problems[0].problem}.",
            "Run 'rollbackkit verify --all' for details; do not use this version.",
        )
    return repo.read_manifest(info)


def check_manifest(repo: Repository, info: VersionInfo) -> list[Problem]:
    """Tag <-> commit <-> manifest consistency, and git-stored components' hashes."""
    problems: list[Problem] = []

    def bad(component: str, text: str) -> None:
        problems.append(Problem(info.version, component, text))

    if not info.bundle_id:
        bad("tag", f"tag {info.tag} carries no bundle id (not made by rollbackkit, or rewritten)")
    if info.recorded_commit and info.recorded_commit != info.commit:
        bad("tag", f"tag {info.tag} was moved from commit {info.recorded_commit[:12]} to {info.commit[:12]}")
    elif info.tag not in (registrations := repo.registrations()):
        pass  # registered in another clone: the tag alone is checked
    elif (registered := registrations[info.tag]) is None:
        bad("tag", f"the journal's record of registering {info.tag} is damaged (its line does not match its hash)")
    else:  # the journal saw it registered
        if registered[0] != info.commit:
            bad("tag", f"tag {info.tag} was moved from commit {registered[0][:12]}")
        elif registered[1] and registered[1] != info.bundle_id:
            bad("tag", f"tag {info.tag} names another bundle id than the journal recorded at register")
    try:
        manifest = repo.read_manifest(info)
    except IntegrityError as exc:
        bad("manifest", exc.message.rstrip("."))
        return problems
    if manifest.name != info.name or manifest.version != info.version:
        bad("manifest", f"manifest names {manifest.name}@{manifest.version}, not {info.name}@{info.version}")
    content_id = manifest.content_id()
    if manifest.bundle_id != content_id:
        bad("manifest", "manifest content does not match its bundle id (edited)")
    if info.bundle_id and info.bundle_id != content_id:
        bad("manifest", "manifest does not match the bundle id recorded in the tag")
    base = ProjectPaths.bundle_relpath(info.name)
    paths = {
        role: f"{base}/{comp.path}" + (".dvc" if comp.storage == "dvc" else "")
        for role, comp in manifest.components.items()
    }
    blobs = repo.git.blobs(info.commit, list(paths.values()))
    for role, comp in manifest.components.items():
        blob = blobs[paths[role]]
        if blob is None:
            bad(role, f"{paths[role]} is missing from commit {info.commit[:12]}")
        elif comp.storage == "git" and md5_bytes(blob) != comp.md5:
            bad(role, f"{comp.path} in git does not match the manifest hash")
        elif comp.storage == "dvc" and f"md5: {comp.md5}" not in blob.decode(errors="replace"):
            bad(role, f"{comp.path}.dvc points at other data than the manifest")
    return problems


def verify(repo: Repository, infos: list[VersionInfo], *, everything: bool) -> VerifyReport:
    """Re-hash every component of ``infos``; with ``everything``, also report the tags the
    journal registered that are gone (``infos`` is then every version). A DVC remote that is a
    directory missing on this machine is one problem row; the local cache is still checked."""
    problems: list[Problem] = []
    hashed: dict[tuple[str, str], str | None] = {}
    for info in infos:
        found = check_manifest(repo, info)
        problems += found
        if any(p.component in ("manifest", "tag") for p in found):
            continue
        manifest = repo.read_manifest(info)
        for role, comp in manifest.components.items():
            if comp.storage == "dvc":
                problems += [
                    Problem(info.version, role, text) for text in _check_dvc_object(repo, comp.md5, comp.path, hashed)
                ]
    if (absent := hashed.get(_ABSENT)) is not None:
        problems.append(Problem("*", "dvc-remote", f"{absent.rstrip('.')}: only the local DVC cache was checked"))
    if everything:
        problems += _check_journal_tags(repo, {i.tag: i for i in infos})
        from rollbackkit.registry.intent import unrecorded_tag

        if (tag := unrecorded_tag(repo)) is not None:  # a register killed between its tag and its record
            text = f"register of {tag} was interrupted before its journal record; run 'rollbackkit recover'"
            problems.append(Problem(tag_version(tag) or "?", "tag", text))
    return VerifyReport(checked=[i.tag for i in infos], problems=problems)


_ABSENT = ("remote", "absent")
"""Key of ``hashed`` holding :meth:`DvcStore.absent_remote`'s message (None: the remote is no missing directory)."""


def _check_dvc_object(repo: Repository, md5: str, path: str, hashed: dict[tuple[str, str], str | None]) -> list[str]:
    """Hash the cache and remote copies of one object (each at most once per verify)."""
    if ("cache", md5) not in hashed:
        cached = repo.dvc.cache_path(md5)
        hashed[("cache", md5)] = md5_file(cached) if cached.is_file() else None
    if _ABSENT not in hashed:
        hashed[_ABSENT] = (repo.dvc.absent_remote() or (None,))[0]
    if hashed[_ABSENT] is not None:
        missing = hashed[("cache", md5)] is None
        return [f"{path}: missing from the local DVC cache, and the remote cannot be read here"] if missing else []
    if ("remote", md5) not in hashed:
        hashed[("remote", md5)] = _remote_md5(repo, md5)
    local, remote = hashed[("cache", md5)], hashed[("remote", md5)]
    out = []
    if local is not None and local != md5:
        out.append(f"{path}: the local DVC cache copy is corrupted (md5 {local})")
    if remote is not None and remote != md5:
        out.append(f"{path}: the DVC remote copy is corrupted (md5 {remote})")
    if local is None and remote is None:
        out.append(f"{path}: missing from both the local DVC cache and the remote")
    return out


def _remote_md5(repo: Repository, md5: str) -> str | None:
    import hashlib

    handle = repo.dvc.remote_open(md5)
    if handle is None:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    with handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _check_journal_tags(repo: Repository, current: dict[str, VersionInfo]) -> list[Problem]:
    """Tags the journal registered that are gone (a moved tag is :func:`check_manifest`'s finding)."""
    return [
        Problem(
            tag_version(tag) or "?",
            "tag",
            f"tag {tag} was deleted"
            if record is not None
            else f"the journal's record of registering {tag} is damaged (its line does not match its hash)",
        )
        for tag, record in repo.registrations().items()
        if tag not in current
    ]
