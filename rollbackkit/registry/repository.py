"""What every registry operation works on: one project's git repo, DVC store, journal and tags.

:class:`Repository` holds the handles (``root``, ``paths``, ``git``, ``dvc``), opens the
journal, lists the registered versions and finds one by ``NAME@vX.Y.Z`` or ``NAME@latest``.
The operation modules (:mod:`~rollbackkit.registry.register`, ``restore``, ``verify``,
``recover``, ...) take a Repository; :class:`rollbackkit.registry.store.Registry` is the
facade that binds them, and is itself a Repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError, InvalidReference, NotInitialised, VersionNotFound
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import Reference, Version, validate_name
from rollbackkit.registry.gitrepo import Git, find_root
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.journal_chain import digest
from rollbackkit.registry.tags import versions_in

if TYPE_CHECKING:
    from rollbackkit.registry.dvcstore import DvcStore


class Repository:
    """The git + DVC repository a registry lives in, and the versions its tags register.

    Args:
        repo: Any path inside the repository's work tree.
    """

    def __init__(self, repo: str | Path = ".") -> None:
        self.root = find_root(repo)
        self.paths = ProjectPaths(self.root)
        self.git = Git(self.root)
        self._dvc: DvcStore | None = None
        self._registered_cache: tuple[tuple[int, ...], dict[str, tuple[str, str] | None]] | None = None

    @property
    def dvc(self) -> DvcStore:
        """The repository's DVC store (DVC is imported on first use)."""
        if self._dvc is None:
            from rollbackkit.registry.dvcstore import DvcStore

            self._dvc = DvcStore(self.root)
        return self._dvc

    def journal(self) -> Journal:
        """The project's journal (append-only record of every mutation)."""
        return Journal(self.paths.journal)

    def require_initialised(self) -> None:
        """Raise NotInitialised unless ``rollbackkit init`` set the repository up."""
        if not self.dvc.is_initialised() or not self.paths.config_file.exists():
            raise NotInitialised(f"{self.root} is not set up for rollbackkit.", "Run 'rollbackkit init' there first.")

    # ------------------------------------------------------------------ versions
    def versions(self, name: str | None = None) -> list[VersionInfo]:
        """Registered versions (of ``name``, or all), sorted by name then semver."""
        if name is not None:
            validate_name(name)
        return versions_in(self.git.tags(), name)

    def names(self) -> list[str]:
        """Names of every registered bundle."""
        return sorted({v.name for v in self.versions()})

    def registered_versions(self, name: str) -> list[VersionInfo]:
        """The versions of ``name``, sorted by semver; raise VersionNotFound when there are none."""
        versions = versions_in(self.git.tags(), name)
        if not versions:
            raise VersionNotFound(
                f"No versions of {name!r} are registered.", "Run 'rollbackkit list' to see what is registered."
            )
        return versions

    def find(self, ref: Reference) -> VersionInfo:
        """The version ``NAME@vX.Y.Z`` or ``NAME@latest`` names (``NAME#ENV`` is resolved by
        :func:`rollbackkit.registry.assignments.resolve`)."""
        if ref.version:
            for v in versions_in(self.git.tags(), ref.name):
                if v.version == ref.version:
                    return v
            raise self._not_registered(ref)
        versions = self.registered_versions(ref.name)
        if ref.latest:
            return max(versions, key=lambda v: Version.parse(v.version))
        raise InvalidReference(f"{ref} names an environment, not a version.", "Use NAME@vX.Y.Z or NAME@latest.")

    def _not_registered(self, ref: Reference) -> VersionNotFound:
        """The error for a version with no tag, naming the commit an interrupted register of it left."""
        from rollbackkit.registry.proofs import interrupted_note

        note = interrupted_note(self.paths, self.git, self.journal(), str(ref))
        if note is not None:  # a register of it was killed after its commit
            return VersionNotFound(f"{ref} is not registered: {note[0]}.", note[1])
        self.registered_versions(ref.name)  # none at all: says so
        return VersionNotFound(f"{ref} is not registered.", "Run 'rollbackkit list NAME' to see its versions.")

    def read_manifest(self, info: VersionInfo) -> Manifest:
        """A version's manifest as its commit holds it (not verified: see :mod:`~rollbackkit.registry.verify`)."""
        path = f"{ProjectPaths.bundle_relpath(info.name)}/{MANIFEST_FILE}"
        text = self.git.blobs(info.commit, [path])[path]
        if text is None:
            raise IntegrityError(
                f"{info.tag} points at a commit without {path}.",
                "The tag was moved or created by hand; run 'rollbackkit verify --all'.",
            )
        return Manifest.from_yaml(text, where=f"{info.tag}:{path}")

    def registrations(self) -> dict[str, tuple[str, str] | None]:
        """``tag -> (commit, bundle id)`` of each version's last registration in the journal.

        A ``register`` line whose content does not match its own hash maps its tag to None:
        the record is damaged, and the tag is refused rather than checked against nothing.
        Read once per change of the journal file (a load at deploy time costs a stat and a
        read of the head; the change time catches an edit that keeps size and mtime), and
        only ``register`` lines are parsed. The journal is local: a version registered in
        another clone has no record here and is checked against its tag alone.
        """
        path = self.paths.journal
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}
        try:
            head = path.with_name(path.name + ".head").read_bytes()
        except OSError:
            head = b""
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, hash(head))
        if self._registered_cache is not None and self._registered_cache[0] == key:
            return self._registered_cache[1]
        records: dict[str, tuple[str, str] | None] = {}
        for line in path.read_bytes().splitlines():
            if b'"register"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:  # a damaged line is journal verify's finding, not a registration
                continue
            if isinstance(entry, dict) and entry.get("event") == "register" and isinstance(entry.get("tag"), str):
                whole = entry.get("hash") == digest(entry)
                records[entry["tag"]] = (
                    (str(entry.get("commit", "")), str(entry.get("bundle_id", ""))) if whole else None
                )
        self._registered_cache = (key, records)
        return records
