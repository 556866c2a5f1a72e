"""Compare two versions of a project: resolve ``NAME@VERSION`` references, then diff them.

The diff itself is pure (:func:`rollbackkit.analysis.diff.diff_bundles`); this module only
finds the versions in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rollbackkit.analysis.diff import diff_bundles
from rollbackkit.analysis.diff_distributions import FeatureDistributions, side_by_side
from rollbackkit.analysis.diffreport import BundleDiff
from rollbackkit.analysis.diffsections import DiffSection, diff_sections, distribution_features
from rollbackkit.bundle.model import BundleDescription
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import RollbackkitError
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


MAX_DISTRIBUTIONS = 12
"""The most features whose reference distributions a readable diff bins (the most changed first)."""


@dataclass(frozen=True)
class ReadableDiff(HasCard):
    """A diff grouped for reading, with reference distributions side by side for changed features.

    Attributes:
        diff: The diff itself.
        sections: Its groups (:func:`rollbackkit.analysis.diffsections.diff_sections`).
        distributions: Per changed feature (schema or training median), both versions' reference
            profile binned on shared bins; at most :data:`MAX_DISTRIBUTIONS`.
        note: Why some distributions are missing (a version without a reference profile), or "".
    """

    diff: BundleDiff
    sections: list[DiffSection]
    distributions: list[FeatureDistributions] = field(default_factory=list)
    note: str = ""

    def card(self) -> Card:
        """The diff's card with the changed features' reference distributions listed."""
        from rollbackkit.ops.result_cards import readable_diff_card

        return readable_diff_card(self)


def readable_diff(a: Version, b: Version, repo: Repository | str | Path = ".") -> ReadableDiff:
    """Diff two versions (as :func:`diff`) grouped by section, with changed features' reference distributions."""
    if not isinstance(repo, Repository) and not (isinstance(a, BundleDescription) and isinstance(b, BundleDescription)):
        repo = Repository(repo)
    da, db = describe(a, repo), describe(b, repo)
    result = diff_bundles(da, db)
    names = most_moved(result, distribution_features(result))
    shown, note = [], ""
    if names:
        try:
            ref_a, ref_b = da.reference_part("input"), db.reference_part("input")
        except RollbackkitError as exc:
            note = f"No reference distributions: {exc.message}"
        else:
            names = [n for n in names if n in ref_a.columns and n in ref_b.columns]
            if len(names) > MAX_DISTRIBUTIONS:  # cut before binning: a 500-feature retrain bins 12
                note = f"Showing the {MAX_DISTRIBUTIONS} most moved of {len(names)} changed features."
                names = names[:MAX_DISTRIBUTIONS]
            binned = (side_by_side(name, ref_a[name], ref_b[name]) for name in names)
            shown = [d for d in binned if d is not None]
    return ReadableDiff(result, diff_sections(result), shown, note)


def most_moved(d: BundleDiff, names: list[str]) -> list[str]:
    """``names`` by how far their training median moved (|shift| in IQR units), most first;
    a feature whose schema changed but whose median did not keeps its place after them."""
    shift = {p.name: abs(p.shift_iqr) if p.shift_iqr == p.shift_iqr else 0.0 for p in d.profile}  # NaN: unmoved
    return sorted(names, key=lambda n: -shift.get(n, 0.0))
