"""A classifier's score delta for a rollback preview: the probability of the class served.

A multiclass model has no one score column (``proba_Barolo``, ``proba_Grignolino``, ...), and a
class id is never a score. What a data scientist asks of a rollback is "how sure is the target
of the answer users got?": per row, the probability both versions give the class the SERVING
version predicted (``proba_<its prediction>``), so ``after - before`` is negative where the
target doubts that answer. Rows whose predicted class has no ``proba_`` column in both
versions (or no prediction) have NaN and are left out of the deltas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SERVED_CLASS = "proba of the served class"
"""The score name a preview shows for these deltas (no output column has this name)."""


def _class_text(value: object) -> str:
    """A predicted class as a ``proba_`` column spells it (``1`` for a 1.0 read back from the log)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def has_class_probas(before: list[str], after: list[str]) -> bool:
    """Both versions output ``proba_*`` columns they share (a classifier with probabilities)."""
    return any(c.startswith("proba_") for c in set(before) & set(after))


def served_class_proba(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row, ``before``'s and ``after``'s probability of the class ``before`` predicted (NaN where
    either lacks that class's ``proba_`` column or ``before`` predicted nothing)."""
    predicted = before["prediction"].astype(object)
    names = np.array([None if pd.isna(v) else f"proba_{_class_text(v)}" for v in predicted.to_numpy()], dtype=object)
    old, new = np.full(len(before), np.nan), np.full(len(before), np.nan)
    for column in {c for c in before.columns if str(c).startswith("proba_")} & set(after.columns):
        rows = names == column
        old[rows] = pd.to_numeric(before[column], errors="coerce").to_numpy(dtype="float64")[rows]
        new[rows] = pd.to_numeric(after[column], errors="coerce").to_numpy(dtype="float64")[rows]
    return pd.Series(old, index=before.index), pd.Series(new, index=before.index)
