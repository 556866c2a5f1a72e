"""Compare two versions of a project: resolve ``NAME@VERSION`` references, then diff them.

The diff itself is pure (:func:`rollbackkit.analysis.diff.diff_bundles`); this module only
finds the versions in the registry.
"""

from __future__ import annotations

from pathlib import Path

from rollbackkit.analysis.diff import diff_bundles
from rollbackkit.analysis.diffreport import BundleDiff
from rollbackkit.bundle.model import BundleDescription
from rollbackkit.registry.assignments import resolve
from rollbackkit.registry.contents import describe as describe_version
from rollbackkit.registry.repository import Repository

Version = BundleDescription | str
"""A loaded or described bundle, or a ``NAME@VERSION`` reference."""


def describe(version: Version, repo: Repository | str | Path = ".") -> BundleDescription:
    """A loaded or described bundle as it is; a ``NAME@VERSION`` reference described in ``repo``."""
    if isinstance(version, BundleDescription):
        return version
    repository = repo if isinstance(repo, Repository) else Repository(repo)
    return describe_version(repository, resolve(repository, str(version)))


def diff(a: Version, b: Version, repo: Repository | str | Path = ".") -> BundleDiff:
    """Diff two versions, given as loaded/described bundles or ``NAME@VERSION`` references.

    Args:
        a: The "from" version.
        b: The "to" version.
        repo: The repository (or a path in the project) references are resolved in; opened
            only when a reference is given.
    """
    if not isinstance(repo, Repository) and not (isinstance(a, BundleDescription) and isinstance(b, BundleDescription)):
        repo = Repository(repo)
    return diff_bundles(describe(a, repo), describe(b, repo))
