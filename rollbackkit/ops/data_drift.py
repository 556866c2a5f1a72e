"""Drift of one column between reference data and current data (``rollbackkit drift``).

The reference is a file, or ``NAME@VERSION``: that version's reference profile, whose
primary output is then the default column. The metrics are :mod:`rollbackkit.analysis.drift`'s.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rollbackkit.analysis.drift import CategoricalDrift, DriftResult
from rollbackkit.registry.assignments import resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository


def reference_data(repo: str | Path, reference: str) -> tuple[pd.DataFrame, str | None]:
    """The reference frame and its default column.

    ``reference`` is a ``.parquet``/``.csv`` path, or ``NAME@VERSION`` (when no such file
    exists) for that version's reference profile; the default column is then its primary
    output, else None.
    """
    from rollbackkit.bundle.frames import parts, read_frame

    if "@" in reference and not Path(reference).exists():
        repository = Repository(repo)
        bundle = describe(repository, resolve(repository, reference))
        return parts(bundle.reference), bundle.schema.output.primary
    return read_frame(Path(reference), "reference data"), None


def column_drift(
    reference: pd.DataFrame, current: str | Path, column: str, by: list[str] | None = None
) -> list[DriftResult | CategoricalDrift]:
    """Drift of ``column`` from ``reference`` to the data in ``current``: one result, or one
    per slice of ``by``."""
    from rollbackkit.analysis.drift import drift
    from rollbackkit.analysis.slices import drift_by
    from rollbackkit.bundle.frames import read_frame

    frame = read_frame(Path(current), "current data")
    return drift_by(reference, frame, column, by) if by else [drift(reference, frame, column)]
