"""Compare two versions of a project: resolve ``NAME@VERSION`` references, then diff them.

The diff itself is pure (:func:`rollbackkit.analysis.diff.diff_bundles`); this module only
finds the versions in the registry.
"""

from __future__ import annotations

from pathlib import Path

from rollbackkit.analysis.diff import diff_bundles
from rollbackkit.analysis.diffreport import BundleDiff
from rollbackkit.bundle.model import BundleDescription
from rollbackkit.registry.store import Registry

Version = BundleDescription | str
"""A loaded or described bundle, or a ``NAME@VERSION`` reference."""


def describe(version: Version, repo: Registry | str | Path = ".") -> BundleDescription:
    """A loaded or described bundle as it is; a ``NAME@VERSION`` reference described in ``repo``."""
    if isinstance(version, BundleDescription):
        return version
    registry = repo if isinstance(repo, Registry) else Registry(repo)
    return registry.describe(str(version))


def diff(a: Version, b: Version, repo: Registry | str | Path = ".") -> BundleDiff:
    """Diff two versions, given as loaded/described bundles or ``NAME@VERSION`` references.

    Args:
        a: The "from" version.
        b: The "to" version.
        repo: The registry (or a path in the project) references are resolved in; opened
            only when a reference is given.
    """
    if not isinstance(repo, Registry) and not (isinstance(a, BundleDescription) and isinstance(b, BundleDescription)):
        repo = Registry(repo)
    return diff_bundles(describe(a, repo), describe(b, repo))
