"""A preview's rows grouped by the columns their requests logged, each group checked and scored apart.

A prediction log stacks the rows of requests sent under different input schemas (a client
that added a column, an older caller), the columns a request did not send left empty. Scored
as one frame, those gaps would reach the target as missing values. Here each group of rows
that logged the same columns is checked against the target's schema rules
(:func:`rollbackkit.bundle.compat.check`, as serving checks a request) and scored with the
adaptation it finds, or refused with the reason, one line per group.

The log keeps no per-row schema in a window, so a request's columns are read from its values: a
column the serving version requires was sent by every request it answered (serving refuses a
request without it), so its empty values are missing values; any other column a request left
empty in every row is read as not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.compat import Adaptation

Scorer = Callable[[pd.DataFrame], tuple[pd.DataFrame | None, str | None, Adaptation, str]]
"""Scores one group's rows: the target's outputs (None: refused), why not, the adaptation, where."""


@dataclass(frozen=True)
class SchemaGroup:
    """The rows of a preview sample whose requests logged the same columns, and what became of them.

    Attributes:
        columns: The columns these rows logged (in the log's order).
        rows: Rows in the group.
        absent: Columns other rows of the sample logged and these did not.
        adaptation: What was done to its columns before the target scored them.
        refused: Why the target did not score them (None: it did).
        where: Where they were scored (a warm slot or the loaded bundle; None when refused before).
    """

    columns: list[str]
    rows: int
    absent: list[str] = field(default_factory=list)
    adaptation: Adaptation = field(default_factory=Adaptation)
    refused: str | None = None
    where: str | None = None

    def said(self) -> str:
        """One line: the rows, the columns they lack, and what was adapted or why refused."""
        from rollbackkit.bundle.card_views import adaptation_said

        lacking = (
            f" without {', '.join(self.absent[:6])}{' ...' if len(self.absent) > 6 else ''}" if self.absent else ""
        )
        head = f"{self.rows:,} row(s) logged{lacking}"
        if self.refused is not None:
            return f"{head}: refused ({self.refused})"
        applied = adaptation_said(self.adaptation, names=6)
        return f"{head}: scored " + ("as logged" if applied == "none" else f"after the adaptation that {applied}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "columns": self.columns,
            "rows": self.rows,
            "absent": self.absent,
            "adaptation": self.adaptation.to_dict(),
            "refused": self.refused,
            "where": self.where,
        }


def schema_masks(
    inputs: pd.DataFrame, requests: pd.Series | None, required: frozenset[str] = frozenset()
) -> list[tuple[list[str], np.ndarray]]:
    """``(columns, rows)`` per column set the sample's requests logged, the largest group first (the
    widest of equal ones).

    A request's columns are the ``required`` ones (what the serving version needs: every request
    it answered sent them) and those any of its rows has a value in (see the module); without
    request ids each row is its own request.
    """
    if inputs.empty:
        return []
    present = inputs.notna()
    for column in present.columns:
        if str(column) in required:
            present[column] = True
    if requests is not None and len(requests) == len(inputs):
        ids = requests.astype(object).where(requests.notna(), pd.Series(range(len(inputs)), index=requests.index))
        present = present.groupby(ids.to_numpy(), sort=False).transform("any")
    names = [str(c) for c in inputs.columns]
    keys = present.to_numpy(dtype=bool)
    if keys.all():
        return [(names, np.ones(len(inputs), dtype=bool))]
    codes, found = _row_codes(keys)
    groups = []
    for code, row in enumerate(found):
        mask = codes == code
        groups.append(([n for n, on in zip(names, row, strict=True) if on], mask))
    return sorted(groups, key=lambda g: (-int(g[1].sum()), -len(g[0])))


def _row_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A group code per row of a boolean matrix, and each code's row of booleans."""
    found, codes = np.unique(keys, axis=0, return_inverse=True)
    return codes.reshape(-1), found


def score_groups(
    inputs: pd.DataFrame, requests: pd.Series | None, scorer: Scorer, required: frozenset[str] = frozenset()
) -> tuple[pd.DataFrame | None, np.ndarray, list[SchemaGroup]]:
    """Each column set's rows scored apart by ``scorer``: the outputs of the rows scored (in
    sample order), which rows they are, and one :class:`SchemaGroup` per column set (``required``:
    the serving version's input columns, see :func:`schema_masks`)."""
    masks = schema_masks(inputs, requests, required)
    every = {c for columns, _ in masks for c in columns}
    kept = np.zeros(len(inputs), dtype=bool)
    parts: list[pd.DataFrame] = []
    groups: list[SchemaGroup] = []
    for columns, mask in masks:
        rows = inputs.loc[mask, columns].reset_index(drop=True)
        outputs, refused, adaptation, where = scorer(rows)
        absent = sorted(every - set(columns))
        groups.append(SchemaGroup(columns, int(mask.sum()), absent, adaptation, refused, where))
        if outputs is not None:
            kept |= mask
            parts.append(outputs.set_axis(np.flatnonzero(mask)))
    if not parts:
        return None, kept, groups
    after = pd.concat(parts).sort_index().reset_index(drop=True)
    return after, kept, groups
