"""Versions on git + DVC: register (immutable), list, resolve, show, restore, verify, load.

Storage (see DESIGN.md): ``bundles/NAME/`` holds ``bundle.yaml`` and the components; text
components are committed to git, binary ones are tracked by DVC and pushed to the DVC
remote. A version is the annotated GTO tag ``NAME@vX.Y.Z`` on the commit that registered
it; ``gto show`` and ``dvc artifacts get`` read the registry as it is.

Register order (crash-safe): build in scratch space -> move into ``bundles/NAME`` -> DVC
add -> **push** -> ``dvc.yaml`` -> commit -> **tag last**. A process killed at any point
leaves no tag or a complete version; the next mutating command finds the intent record and
puts ``bundles/NAME`` and ``dvc.yaml`` back as HEAD has them. A commit made just before a
crash stays in history without a tag: it is not a version (documented, harmless).

Uncommitted changes: ``register`` commits only ``bundles/NAME/`` and ``dvc.yaml``. It
refuses when ``dvc.yaml`` has uncommitted edits (they would be swept in); other work in the
tree is never touched or committed. ``bundles/NAME/`` belongs to rollbackkit.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest, atomic_write, md5_bytes, md5_file
from rollbackkit.errors import (
    DirtyWorkspace,
    IntegrityError,
    InvalidPath,
    NotInitialised,
    RollbackkitError,
    UnreadableRecord,
    VersionExists,
    VersionNotFound,
)
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.project import DEFAULT_REMOTE_DIR, DEFAULT_REMOTE_NAME, ProjectPaths, refuse_metadata_dir
from rollbackkit.refs import Reference, Version, validate_name, version_tag
from rollbackkit.registry import people
from rollbackkit.registry.gitrepo import Git, TagInfo, find_root

if TYPE_CHECKING:
    import pandas as pd

    from rollbackkit.analysis.parity import ParityReport
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.artifacts import Preprocess
    from rollbackkit.bundle.compat import CompatReport, Thresholds
    from rollbackkit.bundle.model import BundleDescription, LoadedBundle
    from rollbackkit.registry.dvcstore import DvcStore

TAG_RE = re.compile(r"^(?P<name>[a-z0-9]([a-z0-9-]*[a-z0-9])?)@(?P<version>v\S+)$")
STAGE_TAG_RE = re.compile(
    r"^(?P<name>[a-z0-9]([a-z0-9-]*[a-z0-9])?)#(?P<env>[a-z0-9]([a-z0-9-]*[a-z0-9])?)#(?P<n>[0-9]+)$"
)
TRAILER_ID = "Rollbackkit-Bundle-Id"
TRAILER_COMMIT = "Rollbackkit-Commit"
REGISTER_STEPS = ("staged", "dvc_added", "pushed", "dvc_yaml", "committed", "tagged")


@dataclass(frozen=True)
class VersionInfo:
    """One registered version, as its tag records it."""

    name: str
    version: str
    bundle_id: str
    created: str
    commit: str
    tag: str
    author: str = ""
    message: str = ""
    recorded_commit: str = field(default="", repr=False)  # the commit the tag message names

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        data = asdict(self)
        del data["recorded_commit"]
        return data


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


@dataclass(frozen=True)
class RestoreResult:
    """What :meth:`Registry.restore` wrote, and how long it took."""

    info: VersionInfo
    directory: Path
    files: list[str]
    seconds: float


def _tag_message(name: str, version: str, bundle_id: str, commit: str, message: str) -> str:
    head = f"Registering artifact {name} version {version}"
    body = f"\n\n{message.strip()}" if message.strip() else ""
    return f"{head}{body}\n\n{TRAILER_ID}: {bundle_id}\n{TRAILER_COMMIT}: {commit}\n"


def _trailer(message: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)\s*$", message, re.MULTILINE)
    return match.group(1) if match else ""


def _user_message(message: str) -> str:
    lines = message.strip().splitlines()[1:]
    return "\n".join(ln for ln in lines if not ln.startswith("Rollbackkit-")).strip()


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def version_from_tag(tag: TagInfo) -> VersionInfo | None:
    """Parse a registration tag into a VersionInfo (None for other tags)."""
    match = TAG_RE.fullmatch(tag.name)
    if not match or not Version.is_valid(match["version"]):
        return None
    return VersionInfo(
        name=match["name"],
        version=match["version"],
        bundle_id=_trailer(tag.message, TRAILER_ID),
        created=_iso(tag.timestamp),
        commit=tag.commit,
        tag=tag.name,
        author=tag.tagger,
        message=_user_message(tag.message),
        recorded_commit=_trailer(tag.message, TRAILER_COMMIT),
    )


class Registry:
    """The bundle registry of one git + DVC repository.

    Args:
        repo: Any path inside the repository's work tree.
    """

    def __init__(self, repo: str | Path = ".") -> None:
        self.root = find_root(repo)
        self.paths = ProjectPaths(self.root)
        self.git = Git(self.root)
        self._dvc: DvcStore | None = None
        self._registered_cache: tuple[tuple[int, ...], dict[str, tuple[str, str] | None]] | None = None

    # ------------------------------------------------------------------ set-up
    @property
    def dvc(self) -> DvcStore:
        """The repository's DVC store (DVC is imported on first use)."""
        if self._dvc is None:
            from rollbackkit.registry.dvcstore import DvcStore

            self._dvc = DvcStore(self.root)
        return self._dvc

    @classmethod
    def init(cls, repo: str | Path = ".", remote: str | None = None) -> Registry:
        """Set up rollbackkit in an existing git repo: DVC, a default remote, config; commit.

        Args:
            repo: Path inside the git repository.
            remote: DVC remote URL or directory (default: ``.rollbackkit/dvc-remote``, a
                local directory remote stored relative to the project, so a copy of the
                project writes into its own). An ``s3://`` URL works the same through dvc-s3.
        """
        registry = cls(repo)
        paths = registry.paths
        with repo_lock(paths.lock_file):
            registry.dvc.init()
            if remote is None:
                registry.dvc.set_remote(DEFAULT_REMOTE_NAME, str(registry.root / DEFAULT_REMOTE_DIR), relative=True)
            else:
                url = remote if "://" in remote else str(Path(remote).expanduser().resolve())
                registry.dvc.set_remote(DEFAULT_REMOTE_NAME, url)
            if not paths.config_file.exists():
                atomic_write(paths.config_file, "# rollbackkit project configuration\nbundles_dir: bundles\n")
            atomic_write(paths.config_dir / ".gitignore", "/local/\n/dvc-remote/\n")
            to_commit = [p for p in (".dvc", ".dvcignore", ".rollbackkit") if (registry.root / p).exists()]
            if registry.git.dirty_paths(to_commit) or registry.git.run(
                "ls-files", "--others", "--exclude-standard", "--", *to_commit
            ):
                registry.git.commit_paths(to_commit, "rollbackkit: initialise DVC and rollbackkit")
        return registry

    def _require_initialised(self) -> None:
        if not self.dvc.is_initialised() or not self.paths.config_file.exists():
            raise NotInitialised(f"{self.root} is not set up for rollbackkit.", "Run 'rollbackkit init' there first.")

    # ------------------------------------------------------------------ reading
    def versions(self, name: str | None = None) -> list[VersionInfo]:
        """Registered versions (of ``name``, or all), sorted by name then semver."""
        if name is not None:
            validate_name(name)
        infos = [v for t in self.git.tags() if (v := version_from_tag(t)) and (name is None or v.name == name)]
        return sorted(infos, key=lambda v: (v.name, Version.parse(v.version)))

    def names(self) -> list[str]:
        """Names of every registered bundle."""
        return sorted({v.name for v in self.versions()})

    def resolve(self, ref: str | Reference) -> VersionInfo:
        """Resolve ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#ENV`` to a version.

        ``NAME#ENV`` is what serves ENV (:meth:`Deployments.state <rollbackkit.deployments.Deployments.state>`):
        the live version, not a running canary.
        """
        ref = Reference.parse(ref) if isinstance(ref, str) else ref
        tags = self.git.tags()
        versions = [v for t in tags if (v := version_from_tag(t)) and v.name == ref.name]
        if not versions:
            raise VersionNotFound(
                f"No versions of {ref.name!r} are registered.", "Run 'rollbackkit list' to see what is registered."
            )
        if ref.latest:
            return max(versions, key=lambda v: Version.parse(v.version))
        if ref.version:
            for v in versions:
                if v.version == ref.version:
                    return v
            raise VersionNotFound(f"{ref} is not registered.", "Run 'rollbackkit list NAME' to see its versions.")
        from rollbackkit.registry.assignments import Deployments

        live = Deployments(self).state(ref.name, str(ref.env)).live  # what serves: a running canary does not count
        if live is None:
            raise VersionNotFound(f"Nothing is assigned to {ref}.", "Deploy a version there first.")
        match = [v for v in versions if v.version == live.version]
        if not match:
            raise IntegrityError(
                f"{live.tag} points at a commit that registers no version.", "Run 'rollbackkit verify --all'."
            )
        return match[0]

    def manifest(self, ref: str | Reference | VersionInfo) -> Manifest:
        """The verified manifest of a version, read from git (no checkout)."""
        info = ref if isinstance(ref, VersionInfo) else self.resolve(ref)
        problems = self._check_manifest(info)
        if problems:
            raise IntegrityError(
                f"{info.tag}: {problems[0].problem}.",
                "Run 'rollbackkit verify --all' for details; do not use this version.",
            )
        return self._read_manifest(info)

    def show(self, ref: str | Reference) -> dict[str, Any]:
        """Everything about one version: tag data, components, schema, flags (JSON-ready)."""
        info = self.resolve(ref)
        manifest = self.manifest(info)
        base = f"{ProjectPaths.bundle_relpath(info.name)}"
        schema = json.loads(self.git.blob(info.commit, f"{base}/{manifest.components['schema'].path}"))
        model = manifest.components["model"]
        return {
            **info.to_dict(),
            "components": {
                role: c.model_dump(mode="json", exclude_none=True) for role, c in manifest.components.items()
            },
            "schema": schema,
            "unsafe_model_format": model.format in ("joblib", "pickle"),
            "unsafe_allowed": manifest.registration.unsafe,
            "trusted_types": list(model.trusted_types),
            "trusted_by_operator": list(manifest.registration.trust),
        }

    def _read_manifest(self, info: VersionInfo) -> Manifest:
        path = f"{ProjectPaths.bundle_relpath(info.name)}/{MANIFEST_FILE}"
        text = self.git.blobs(info.commit, [path])[path]
        if text is None:
            raise IntegrityError(
                f"{info.tag} points at a commit without {path}.",
                "The tag was moved or created by hand; run 'rollbackkit verify --all'.",
            )
        return Manifest.from_yaml(text, where=f"{info.tag}:{path}")

    # ------------------------------------------------------------------ integrity
    def _check_manifest(self, info: VersionInfo) -> list[Problem]:
        """Tag <-> commit <-> manifest consistency, and git-stored components' hashes."""
        problems: list[Problem] = []

        def bad(component: str, text: str) -> None:
            problems.append(Problem(info.version, component, text))

        if not info.bundle_id:
            bad("tag", f"tag {info.tag} carries no bundle id (not made by rollbackkit, or rewritten)")
        if info.recorded_commit and info.recorded_commit != info.commit:
            bad("tag", f"tag {info.tag} was moved from commit {info.recorded_commit[:12]} to {info.commit[:12]}")
        elif info.tag not in (registrations := self._registrations()):
            pass  # registered in another clone: the tag alone is checked
        elif (registered := registrations[info.tag]) is None:
            bad("tag", f"the journal's record of registering {info.tag} is damaged (its line does not match its hash)")
        else:  # the journal saw it registered
            if registered[0] != info.commit:
                bad("tag", f"tag {info.tag} was moved from commit {registered[0][:12]}")
            elif registered[1] and registered[1] != info.bundle_id:
                bad("tag", f"tag {info.tag} names another bundle id than the journal recorded at register")
        try:
            manifest = self._read_manifest(info)
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
        blobs = self.git.blobs(info.commit, list(paths.values()))
        for role, comp in manifest.components.items():
            blob = blobs[paths[role]]
            if blob is None:
                bad(role, f"{paths[role]} is missing from commit {info.commit[:12]}")
            elif comp.storage == "git" and md5_bytes(blob) != comp.md5:
                bad(role, f"{comp.path} in git does not match the manifest hash")
            elif comp.storage == "dvc" and f"md5: {comp.md5}" not in blob.decode(errors="replace"):
                bad(role, f"{comp.path}.dvc points at other data than the manifest")
        return problems

    def verify(self, ref: str | Reference | None = None) -> VerifyReport:
        """Re-hash every component of one version (or all, when ``ref`` is None).

        Checks the tag against its commit and the journal, the manifest against its id, git
        components against their blobs, and DVC components in the local cache and remote.
        """
        infos = [self.resolve(ref)] if ref is not None else self.versions()
        problems: list[Problem] = []
        hashed: dict[tuple[str, str], str | None] = {}
        for info in infos:
            found = self._check_manifest(info)
            problems += found
            if any(p.component in ("manifest", "tag") for p in found):
                continue
            manifest = self._read_manifest(info)
            for role, comp in manifest.components.items():
                if comp.storage == "dvc":
                    problems += [
                        Problem(info.version, role, text)
                        for text in self._check_dvc_object(comp.md5, comp.path, hashed)
                    ]
        if ref is None:
            problems += self._check_journal_tags({i.tag: i for i in infos})
        return VerifyReport(checked=[i.tag for i in infos], problems=problems)

    def _check_dvc_object(self, md5: str, path: str, hashed: dict[tuple[str, str], str | None]) -> list[str]:
        """Hash the cache and remote copies of one object (each at most once per verify)."""
        if ("cache", md5) not in hashed:
            cached = self.dvc.cache_path(md5)
            hashed[("cache", md5)] = md5_file(cached) if cached.is_file() else None
        if ("remote", md5) not in hashed:
            hashed[("remote", md5)] = self._remote_md5(md5)
        local, remote = hashed[("cache", md5)], hashed[("remote", md5)]
        out = []
        if local is not None and local != md5:
            out.append(f"{path}: the local DVC cache copy is corrupted (md5 {local})")
        if remote is not None and remote != md5:
            out.append(f"{path}: the DVC remote copy is corrupted (md5 {remote})")
        if local is None and remote is None:
            out.append(f"{path}: missing from both the local DVC cache and the remote")
        return out

    def _remote_md5(self, md5: str) -> str | None:
        import hashlib

        handle = self.dvc.remote_open(md5)
        if handle is None:
            return None
        digest = hashlib.md5(usedforsecurity=False)
        with handle:
            while chunk := handle.read(4 * 1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def _check_journal_tags(self, current: dict[str, VersionInfo]) -> list[Problem]:
        """Tags the journal registered that are gone (a moved tag is :meth:`_check_manifest`'s finding)."""
        return [
            Problem(
                tag.partition("@")[2] or "?",
                "tag",
                f"tag {tag} was deleted"
                if record is not None
                else f"the journal's record of registering {tag} is damaged (its line does not match its hash)",
            )
            for tag, record in self._registrations().items()
            if tag not in current
        ]

    def _registrations(self) -> dict[str, tuple[str, str] | None]:
        """``tag -> (commit, bundle id)`` of each version's last registration in the journal.

        A ``register`` line whose content does not match its own hash maps its tag to None:
        the record is damaged, and the tag is refused rather than checked against nothing.
        Read once per change of the journal file (a load at deploy time costs a stat and a
        read of the head; the change time catches an edit that keeps size and mtime), and
        only ``register`` lines are parsed. The journal is local: a version registered in
        another clone has no record here and is checked against its tag alone.
        """
        from rollbackkit.registry.journal import _digest

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
                whole = entry.get("hash") == _digest(entry)
                records[entry["tag"]] = (
                    (str(entry.get("commit", "")), str(entry.get("bundle_id", ""))) if whole else None
                )
        self._registered_cache = (key, records)
        return records

    def ensure_cached(self, md5s: Iterable[str], tag: str | None = None) -> None:
        """Pull objects that the local DVC cache lacks from the remote (errors name ``tag``)."""
        from rollbackkit.errors import RemoteError

        missing = [m for m in md5s if not self.dvc.cache_path(m).is_file()]
        if missing:
            try:
                self.dvc.pull(missing)
            except (RemoteError, IntegrityError) as exc:
                if tag is None:
                    raise
                raise type(exc)(f"{tag}: {exc.message}", exc.hint) from exc

    def read_component(self, info: VersionInfo, manifest: Manifest, role: str) -> bytes:
        """The verified bytes of one component (from git or the DVC cache/remote)."""
        comp = manifest.components.get(role)
        if comp is None:
            raise IntegrityError(f"{info.tag} has no {role} component.", "Re-register the bundle with one.")
        if comp.storage == "git":
            data = self.git.blob(info.commit, f"{ProjectPaths.bundle_relpath(info.name)}/{comp.path}")
        else:
            self.ensure_cached([comp.md5], info.tag)
            data = self.dvc.cache_path(comp.md5).read_bytes()
        if md5_bytes(data) != comp.md5:
            raise IntegrityError(
                f"{info.tag}: {comp.path} does not match its manifest hash; refusing to load it.",
                "The local DVC cache is corrupted: delete the file under .dvc/cache and retry to "
                "fetch it again from the remote, then run 'rollbackkit verify --all'.",
            )
        return data

    # ------------------------------------------------------------------ load / restore
    def describe(self, ref: str | Reference | VersionInfo) -> BundleDescription:
        """A version's schema, configs and preprocessing code (verified; no model loaded)."""
        from rollbackkit.bundle.model import BundleDescription

        info = ref if isinstance(ref, VersionInfo) else self.resolve(ref)
        manifest = self.manifest(info)
        return BundleDescription.from_reader(info, manifest, lambda role: self.read_component(info, manifest, role))

    def load(self, ref: str | Reference | VersionInfo) -> LoadedBundle:
        """Load a version (model, schema, configs, preprocessing) after verifying every byte."""
        from rollbackkit.bundle.model import LoadedBundle

        info = ref if isinstance(ref, VersionInfo) else self.resolve(ref)
        manifest = self.manifest(info)
        return LoadedBundle.from_components(info, manifest, lambda role: self.read_component(info, manifest, role))

    # ------------------------------------------------------------------ compatibility
    def check(
        self,
        ref: str | Reference | VersionInfo,
        features: pd.DataFrame | str | Path,
        thresholds: Thresholds | None = None,
    ) -> CompatReport:
        """Can version ``ref`` score this live frame (compatible / adaptable / incompatible)?"""
        from rollbackkit.bundle.compat import check
        from rollbackkit.bundle.conform import conform
        from rollbackkit.bundle.frames import read_frame

        schema = self.describe(ref).schema
        return check(schema, conform(read_frame(features, "live features"), schema), thresholds)

    def parity(
        self, ref: str | Reference | VersionInfo, preprocess: str | Path | Preprocess | None = None
    ) -> ParityReport:
        """Re-run preprocessing on the version's golden inputs and compare features and outputs.

        Args:
            ref: The version.
            preprocess: The code to check: a ``.py`` file, a function, or None for the file the
                version was registered from as it is in the repo now.
        """
        return self._parity(self.load(ref), preprocess)

    def _parity(self, bundle: LoadedBundle, preprocess: str | Path | Preprocess | None) -> ParityReport:
        from rollbackkit.analysis.parity import feature_parity
        from rollbackkit.bundle.artifacts import load_preprocess

        if callable(preprocess):
            return feature_parity(bundle, preprocess, getattr(preprocess, "__qualname__", "a function"))
        if preprocess is not None:
            return feature_parity(bundle, load_preprocess(Path(preprocess)), str(preprocess))
        origin = bundle.manifest.registration.preprocess_origin
        if origin and (self.root / origin).is_file():
            return feature_parity(bundle, load_preprocess(self.root / origin), origin)
        label = (
            "the bundle's own code (no current copy in the repo)"
            if bundle.preprocess_source
            else ("no preprocessing (the model holds it)")
        )
        return feature_parity(bundle, bundle.preprocess, label)

    def preflight(
        self,
        ref: str | Reference | VersionInfo,
        features: pd.DataFrame | str | Path | None = None,
        *,
        consumer: str | None = None,
        preprocess: str | Path | Preprocess | None = None,
        thresholds: Thresholds | None = None,
    ) -> PreflightReport:
        """One verdict before a deploy or rollback: compatibility, parity, output contract.

        Args:
            ref: The version about to serve.
            features: A sample of live features (frame or CSV/Parquet path); skipped if None.
            consumer: Whose output contract consumers expect: a reference such as
                ``NAME#prod`` (default: what serves ``prod`` now, else the latest version).
            preprocess: Code for the parity check (see :meth:`parity`).
            thresholds: Domain-drift limits for the compatibility check.
        """

        return self.preflight_bundle(
            self.load(ref), features, consumer=consumer, preprocess=preprocess, thresholds=thresholds
        )

    def preflight_bundle(
        self,
        bundle: LoadedBundle,
        features: pd.DataFrame | str | Path | None = None,
        *,
        consumer: str | None = None,
        preprocess: str | Path | Preprocess | None = None,
        thresholds: Thresholds | None = None,
    ) -> PreflightReport:
        """:meth:`preflight` for a bundle that is already loaded (as a server has it)."""
        from rollbackkit.analysis.preflight import combine, contract_findings
        from rollbackkit.bundle.compat import check
        from rollbackkit.bundle.conform import conform
        from rollbackkit.bundle.frames import read_frame

        compat = None
        if features is not None:  # a CSV carries no dtypes: read it with the trained ones where lossless
            compat = check(bundle.schema, conform(read_frame(features, "live features"), bundle.schema), thresholds)
        parity = self._parity(bundle, preprocess)
        consumer_info = self._consumer(bundle.info, consumer)
        contract = []
        if consumer_info is not None and consumer_info.tag != bundle.info.tag:
            contract = contract_findings(bundle.schema.output, self.describe(consumer_info).schema.output)
        return combine(bundle.info.tag, consumer_info.tag if consumer_info else None, compat, parity, contract)

    def _consumer(self, target: VersionInfo, consumer: str | None) -> VersionInfo | None:
        if consumer is not None:
            return self.resolve(consumer)
        try:
            return self.resolve(f"{target.name}#prod")
        except VersionNotFound:
            return self.resolve(f"{target.name}@latest")

    def restore(self, ref: str | Reference | VersionInfo, to: str | Path | None = None) -> RestoreResult:
        """Restore a version's files, verified byte for byte.

        Args:
            ref: The version to restore.
            to: Materialise the bundle (manifest + components) into this directory instead
                of the workspace; the workspace is not touched.
        """
        started = time.perf_counter()
        info = ref if isinstance(ref, VersionInfo) else self.resolve(ref)
        manifest = self.manifest(info)
        if to is not None:
            dest = _empty_or_bundle_dir(Path(to), self.root)
            files = self._materialise(info, manifest, dest, workspace=False)
        else:
            self._require_initialised()
            with repo_lock(self.paths.lock_file):
                self._recover()
                self._journal().check_appendable()
                dest = self.paths.bundle_dir(info.name)
                self._refuse_foreign(dest)
                files = self._materialise(info, manifest, dest, workspace=True)
                self._journal().append(
                    "restore",
                    name=info.name,
                    version=info.version,
                    commit=info.commit,
                    seconds=round(time.perf_counter() - started, 4),
                )
        return RestoreResult(info, dest, files, time.perf_counter() - started)

    def _materialise(self, info: VersionInfo, manifest: Manifest, dest: Path, workspace: bool) -> list[str]:
        """Write a version's files into ``dest``, verifying each before it lands."""
        from rollbackkit.bundle.manifest import copy_verified

        base = ProjectPaths.bundle_relpath(info.name)
        self.ensure_cached((c.md5 for c in manifest.components.values() if c.storage == "dvc"), info.tag)
        staging = dest.with_name(f".{dest.name}.rbk-restore-{uuid.uuid4().hex[:8]}")
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise InvalidPath(
                f"Cannot write next to {dest}: {exc.strerror}.", "Choose a directory you can write to."
            ) from exc
        try:
            tree = (
                self.git.ls_tree(info.commit, base)
                if workspace
                else [f"{base}/{MANIFEST_FILE}"]
                + [f"{base}/{c.path}" for c in manifest.components.values() if c.storage == "git"]
            )
            for path, blob in self.git.blobs(info.commit, tree).items():
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
                    copy_verified(self.dvc.cache_path(comp.md5), staging / comp.path, comp.md5)
            if not workspace:
                _write_restore_marker(staging, info, {c.path: c.md5 for c in manifest.components.values()})
            else:  # which files rollbackkit put there, for _refuse_foreign (git's HEAD may not track them)
                self._record_workspace(info, staging, {c.path: c.md5 for c in manifest.components.values()})
            _swap_dir(staging, dest)
        except OSError as exc:
            raise InvalidPath(
                f"Restoring into {dest} failed: {exc.strerror or exc} ({exc.filename or dest}).",
                "Check the space and permissions there; nothing was replaced.",
            ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and p.name != RESTORE_MARKER)

    def _refuse_foreign(self, dest: Path) -> None:
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
        rel = dest.relative_to(self.root).as_posix()
        tracked = set(self.git.run("ls-files", "-z", "--", rel).decode(errors="surrogateescape").split("\0"))
        dirty = set(self.git.dirty_paths([rel]))
        record = self._workspace_record(dest.name)
        restored = _restored_files(record.parent, record.name)
        changed: list[str] = []
        for path in sorted(dest.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            name = path.relative_to(self.root).as_posix()
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

    def _workspace_record(self, name: str) -> Path:
        """Where the files the last workspace restore of ``bundles/NAME`` wrote are listed."""
        return self.paths.local / "restored" / f"{name}.json"

    def _record_workspace(self, info: VersionInfo, staging: Path, verified: dict[str, str]) -> None:
        record = self._workspace_record(info.name)
        record.parent.mkdir(parents=True, exist_ok=True)
        _write_restore_marker(staging, info, verified, record)

    # ------------------------------------------------------------------ register
    def register(
        self,
        name: str,
        model: Any,
        train_data: pd.DataFrame | str | Path,
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
    ) -> VersionInfo:
        """Register one immutable version of bundle ``name``.

        Args:
            name: Bundle name (``churn``, ``credit-risk``).
            model: A fitted estimator/pipeline, or a ``.skops``/``.joblib``/``.pkl`` path.
            train_data: Training frame (or CSV/Parquet path) with raw input features.
            target: Label column in the data (dropped from features, kept as reference labels).
            validation_data: Held-out frame for the reference profile (default: a sample of
                train_data). Pass one: prediction-drift gates compare live scores with the
                reference, and a flexible model's in-sample scores are overconfident, so a
                training-sample reference makes healthy traffic look drifted.
            preprocess: A ``.py`` file defining ``preprocess(frame) -> frame``.
            serving: ``serving.yaml`` path or dict (default: predict + probabilities).
            gates: ``gates.yaml`` path or dict (default: error rate, latency, drift).
            version: Explicit ``vX.Y.Z``; otherwise the latest version bumped by ``bump``.
            bump: ``major``, ``minor`` or ``patch``.
            message: Free text stored in the tag.
            trust: Types beyond skops' defaults and the reviewed list
                (:data:`rollbackkit.artifacts.REVIEWED_TYPES`) that a ``.skops`` file may
                load; recorded in the manifest and shown by :meth:`show`.
            features: The model's raw input columns, in order; other columns of the data
                are left out. Default: the model's ``feature_names_in_`` when the data has
                them (and no preprocessing), else every column but the target.
            unsafe: Allow a ``.joblib``/``.pkl`` model: unpickling runs any code the file
                holds. Recorded in the manifest; :meth:`show` warns. Without it such a
                file is refused before it is read.

        Returns:
            The new version.
        """
        from rollbackkit.registry.builder import build_bundle
        from rollbackkit.registry.dvcyaml import check_dvc_yaml

        validate_name(name)
        if version is not None:
            version = str(Version.parse(version))
        else:
            Version(0, 0, 0).bump(bump)  # validates ``bump`` before anything is written
        self._require_initialised()
        with repo_lock(self.paths.lock_file):
            self._recover()
            version = self._next_version(name, version, bump)
            self._refuse_dirty(["dvc.yaml"])
            check_dvc_yaml(self.root / "dvc.yaml")  # DVC would fail on it halfway through
            self._journal().check_appendable()  # never a tag without its journal record
            self._refuse_foreign(self.paths.bundle_dir(name))
            started = time.perf_counter()
            self.paths.scratch.mkdir(parents=True, exist_ok=True)
            scratch = self.paths.scratch / f"{name}-{uuid.uuid4().hex[:8]}"
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
                    author=people.actor(self.root),
                    message=message,
                    trust=tuple(trust),
                    origin=self._repo_relative(preprocess),
                    features=list(features) if features is not None else None,
                    unsafe=unsafe,
                )
                info = self._commit_bundle(scratch, manifest, message)
            except BaseException:
                self._recover()  # put bundles/NAME and dvc.yaml back as HEAD has them
                raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            self._journal().append(
                "register",
                name=name,
                version=version,
                tag=info.tag,
                commit=info.commit,
                bundle_id=info.bundle_id,
                seconds=round(time.perf_counter() - started, 4),
                **_trust_record(manifest),
            )
            return info

    def _next_version(self, name: str, version: str | None, bump: str) -> str:
        existing = {v.version for v in self.versions(name)}
        if version is not None:
            if version in existing or self.git.tag_exists(version_tag(name, version)):
                raise VersionExists(
                    f"{name}@{version} is already registered; versions are immutable.",
                    "Register a new version (e.g. --bump patch) instead.",
                )
            return version
        if not existing:
            return "v0.0.1"
        latest = max(Version.parse(v) for v in existing)
        return str(Version(latest.major, latest.minor, latest.patch).bump(bump))

    def _refuse_dirty(self, paths: list[str]) -> None:
        dirty = self.git.dirty_paths(paths)
        if dirty:
            raise DirtyWorkspace(
                f"{', '.join(dirty)} has uncommitted changes that would be swept into the register commit.",
                "Commit or stash them first.",
            )

    def _repo_relative(self, path: str | Path | None) -> str:
        """``path`` relative to the repo root when it lies inside it, else ``""``."""
        if path is None:
            return ""
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return ""

    def _commit_bundle(self, scratch: Path, manifest: Manifest, message: str) -> VersionInfo:
        """Move the built bundle into place, DVC add + push, commit, tag (in that order)."""
        from rollbackkit.registry.dvcyaml import declare_artifact

        name, version = manifest.name, manifest.version
        rel = ProjectPaths.bundle_relpath(name)
        dest = self.paths.bundle_dir(name)
        self._write_intent({"op": "register", "name": name, "version": version, "head": self.git.head()})
        _swap_dir(scratch, dest)
        checkpoint("staged")
        dvc_parts = [c for c in manifest.components.values() if c.storage == "dvc"]
        self.dvc.add([dest / c.path for c in dvc_parts])
        checkpoint("dvc_added")
        self.dvc.push(c.md5 for c in dvc_parts)
        checkpoint("pushed")
        declare_artifact(self.root / "dvc.yaml", name, f"{rel}/{manifest.components['model'].path}", manifest)
        checkpoint("dvc_yaml")
        commit = self.git.commit_paths([rel, "dvc.yaml"], f"rollbackkit: register {name} {version}")
        checkpoint("committed")
        tag = version_tag(name, version)
        self.git.create_tag(tag, commit, _tag_message(name, version, manifest.bundle_id, commit, message))
        checkpoint("tagged")
        self._clear_intent()
        return self.resolve(f"{name}@{version}")

    # ------------------------------------------------------------------ crash recovery
    def _intent_file(self) -> Path:
        return self.paths.intents / "current.json"

    def _write_intent(self, record: dict[str, Any]) -> None:
        atomic_write(self._intent_file(), json.dumps(record))

    def _clear_intent(self) -> None:
        self._intent_file().unlink(missing_ok=True)

    def recover(self) -> str | None:
        """Finish cleaning up after a register that was killed; returns what was done.

        Every mutating command does the register part on its own first; ``rollbackkit
        recover`` also clears what those refuse to guess about: an unreadable intent record
        and a damaged journal tail or head are moved aside under names that say why, and the
        move is recorded in the journal.
        """
        with repo_lock(self.paths.lock_file):
            done = self._journal().repair()
            path = self._intent_file()
            if path.exists() and self._read_intent() is None:
                aside = path.with_name(f"{path.name}.unreadable-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
                path.rename(aside)
                self._journal().append(
                    "recover", op="unknown", result=f"moved an unreadable intent record to {aside.name}"
                )
                done.append(
                    f"moved the unreadable intent record to {aside.relative_to(self.root)} "
                    "(check 'git status' for a half-written bundles/ directory)"
                )
            finished = self._recover()
            if finished:
                done.append(finished)
            return "; ".join(done) or None

    def _read_intent(self) -> dict[str, str] | None:
        """The intent record, or None when it is not one that :meth:`_write_intent` wrote."""
        try:
            record = json.loads(self._intent_file().read_bytes().decode("utf-8"))
            if not isinstance(record, dict) or record.get("op") != "register":
                return None
            name, version = validate_name(record["name"]), record["version"]
            version_tag(name, version)
        except (OSError, ValueError, KeyError, TypeError, RollbackkitError):
            return None
        return {"op": "register", "name": name, "version": str(version)}

    def _recover(self) -> str | None:
        """Undo what an interrupted register left uncommitted (caller holds the lock).

        Raises:
            UnreadableRecord: The intent record is garbage; ``rollbackkit recover`` moves it aside.
        """
        swept = self._sweep_scratch()
        note = f"removed {swept} scratch folder(s) left by killed commands" if swept else None
        path = self._intent_file()
        if not path.exists():
            return note
        record = self._read_intent()
        if record is None:
            raise UnreadableRecord(
                f"{path} is not an intent record rollbackkit wrote; it cannot tell what to undo.",
                "Run 'rollbackkit recover' (it moves the file aside), then check 'git status'.",
            )
        self._journal().check_appendable()
        name = record["name"]
        tag = version_tag(name, record["version"])
        if self.git.tag_exists(tag):
            done = f"register of {tag} had completed; nothing to undo"
        else:
            self._reset_to_head(name)
            done = f"register of {tag} was interrupted; bundles/{name} and dvc.yaml reset to HEAD"
        self._journal().append("recover", op=record["op"], name=name, version=record["version"], result=done)
        self._clear_intent()
        return f"{done}; {note}" if note else done

    def _sweep_scratch(self) -> int:
        """Remove what killed commands left in scratch space (caller holds the lock).

        Register builds in ``.rollbackkit/local/tmp/`` and restore stages next to
        ``bundles/NAME`` only while they hold the repository lock, so whatever is there now
        belongs to a process that died.
        """
        leftovers = [p for p in self.paths.scratch.iterdir()] if self.paths.scratch.is_dir() else []
        bundles = self.root / "bundles"
        if bundles.is_dir():
            leftovers += [p for p in bundles.iterdir() if re.fullmatch(r"\..+\.rbk-(restore|old)-[0-9a-f]{8}", p.name)]
        for leftover in leftovers:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        return len(leftovers)

    def _reset_to_head(self, name: str) -> None:
        """Put ``bundles/NAME`` and ``dvc.yaml`` back exactly as HEAD has them."""
        rel = ProjectPaths.bundle_relpath(name)
        head = self.git.head()
        for path in (rel, "dvc.yaml"):
            if head and self.git.has_path(head, path):
                self.git.run("restore", "--source=HEAD", "--staged", "--worktree", "--", path)
            else:
                self.git.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", path)
        shutil.rmtree(self.root / rel, ignore_errors=True)
        if head and self.git.has_path(head, f"{rel}/{MANIFEST_FILE}"):
            head_info = next((v for v in self.versions(name) if v.commit == head), None)
            if head_info is not None:
                self._materialise(head_info, self._read_manifest(head_info), self.root / rel, workspace=True)
            else:
                self.git.run("restore", "--source=HEAD", "--worktree", "--", rel)
        if not (head and self.git.has_path(head, "dvc.yaml")):
            (self.root / "dvc.yaml").unlink(missing_ok=True)

    def _journal(self) -> Any:
        from rollbackkit.registry.journal import Journal

        return Journal(self.paths.journal)


def _trust_record(manifest: Manifest) -> dict[str, Any]:
    """What the operator trusted at register, for the journal (nothing when nothing was)."""
    reg = manifest.registration
    return {**({"trust": list(reg.trust)} if reg.trust else {}), **({"unsafe": True} if reg.unsafe else {})}


def _swap_dir(src: Path, dest: Path) -> None:
    """Replace ``dest`` with ``src`` (a rename when possible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.rbk-old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
        src.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        src.rename(dest)


RESTORE_MARKER = ".rollbackkit-restore.json"
_RESTORE_FORMAT = "rollbackkit/restore@1"


def _write_restore_marker(
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


def _restored_files(directory: Path, name: str = RESTORE_MARKER) -> dict[str, str] | None:
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
    recorded = _restored_files(resolved)
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
