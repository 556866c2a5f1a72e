"""Reading a version's contents, every byte verified: components, description, loaded bundle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rollbackkit.bundle.manifest import Manifest, md5_bytes
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError, RemoteError
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.verify import verified_manifest

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription, LoadedBundle


def ensure_cached(repo: Repository, md5s: Iterable[str], tag: str | None = None) -> None:
    """Pull objects that the local DVC cache lacks from the remote (errors name ``tag``)."""
    missing = [m for m in md5s if not repo.dvc.cache_path(m).is_file()]
    if missing:
        try:
            repo.dvc.pull(missing)
        except (RemoteError, IntegrityError) as exc:
            if tag is None:
                raise
            raise type(exc)(f"{tag}: {exc.message}", exc.hint) from exc


def read_component(repo: Repository, info: VersionInfo, manifest: Manifest, role: str) -> bytes:
    """The verified bytes of one component (from git or the DVC cache/remote)."""
    comp = manifest.components.get(role)
    if comp is None:
        raise IntegrityError(f"{info.tag} has no {role} component.", "Re-register the bundle with one.")
    if comp.storage == "git":
        data = repo.git.blob(info.commit, f"{ProjectPaths.bundle_relpath(info.name)}/{comp.path}")
    else:
        ensure_cached(repo, [comp.md5], info.tag)
        data = repo.dvc.cache_path(comp.md5).read_bytes()
    if md5_bytes(data) != comp.md5:
        raise IntegrityError(
            f"{info.tag}: {comp.path} does not match its manifest hash; refusing to load it.",
            "The local DVC cache is corrupted: delete the file under .dvc/cache and retry to "
            "fetch it again from the remote, then run 'rollbackkit verify --all'.",
        )
    return data


def describe(repo: Repository, info: VersionInfo) -> BundleDescription:
    """A version's schema, configs and preprocessing code (verified; no model loaded)."""
    from rollbackkit.bundle.model import BundleDescription  # pandas: imported on first use

    manifest = verified_manifest(repo, info)
    return BundleDescription.from_reader(info, manifest, lambda role: read_component(repo, info, manifest, role))


def load(repo: Repository, info: VersionInfo) -> LoadedBundle:
    """Load a version (model, schema, configs, preprocessing) after verifying every byte."""
    from rollbackkit.bundle.model import LoadedBundle

    manifest = verified_manifest(repo, info)
    return LoadedBundle.from_components(info, manifest, lambda role: read_component(repo, info, manifest, role))
