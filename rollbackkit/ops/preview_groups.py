"""A preview's rows grouped by the columns their requests sent, each group checked and scored apart.

A prediction log stacks the rows of requests sent under different input schemas (a client
that added a column, an older caller), the columns a request did not send left empty. Scored
as one frame, those gaps would reach the target as missing values. Here each group of rows
whose requests sent the same of the target's input columns is checked against the target's
schema rules (:func:`rollbackkit.bundle.compat.check`, as serving checks a request) and scored
with the adaptation it finds, or refused with the reason, one group per column set (not per
request). Columns the target never reads do not split groups (its check drops them).

The log records the columns each request sent (its input signature): a sample window carries
them (``sent_columns``, see :func:`rollbackkit.serving.predlog.outputs.window_frame`). From a
server that does not send them, a request's columns are inferred from its values: a column the
serving version requires was sent by every request it answered (serving refuses a request
without it); any other column a request left empty in every row is read as not sent (a column
sent as NaN reads as not sent: the groups say they were inferred).
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
        absent: Columns other rows of the sample sent and these did not.
        adaptation: What was done to its columns before the target scored them.
        refused: Why the target did not score them (None: it did).
        where: Where they were scored (a warm slot or the loaded bundle; None when refused before).
        inferred: Their column set was inferred from their values (the sample did not record it).
        members: Which of the sample's rows they are (not in :meth:`to_dict`).
    """

    columns: list[str]
    rows: int
    absent: list[str] = field(default_factory=list)
    adaptation: Adaptation = field(default_factory=Adaptation)
    refused: str | None = None
    where: str | None = None
    inferred: bool = False
    members: np.ndarray | None = field(default=None, repr=False, compare=False)

    def lacking(self) -> str:
        """`` without a, b`` (the columns other rows sent and these did not), or ``""``."""
        if not self.absent:
            return ""
        return f" without {', '.join(self.absent[:6])}{' ...' if len(self.absent) > 6 else ''}"

    def said(self) -> str:
        """One line: the rows, the columns they lack, and what was adapted or why refused."""
        from rollbackkit.bundle.card_views import adaptation_said

        head = f"{self.rows:,} row(s) logged{self.lacking()}"
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
            "inferred": self.inferred,
        }


def schema_masks(
    inputs: pd.DataFrame,
    requests: pd.Series | None,
    required: frozenset[str] = frozenset(),
    sent: pd.Series | None = None,
    read: frozenset[str] | None = None,
) -> list[tuple[list[str], np.ndarray]]:
    """``(columns, rows)`` per column set the sample's requests sent, the largest group first (the
    widest of equal ones).

    ``sent``: each row's recorded column names (a tuple; None where not recorded): used for every
    row when all are recorded. Else a request's columns are the ``required`` ones (what the
    serving version needs: every request it answered sent them) and those any of its rows has a
    value in (see the module); without request ids each row is its own request. ``read``: only
    these columns split groups (the target's inputs; None: every column); a group's other columns
    are those every one of its rows sent.
    """
    if inputs.empty:
        return []
    names = [str(c) for c in inputs.columns]
    if sent is not None and len(sent) == len(inputs) and sent.notna().all():
        codes, sets = pd.factorize(sent)
        keys = np.array([[n in set(columns) for n in names] for columns in sets], dtype=bool)[codes]
    else:
        keys = _inferred(inputs, requests, required)
    if keys.all():
        return [(names, np.ones(len(inputs), dtype=bool))]
    split_by = keys if read is None else keys & np.array([n in read for n in names], dtype=bool)
    codes, found = _row_codes(split_by)
    groups = []
    for code in range(len(found)):
        mask = codes == code
        every_row = keys[mask].all(axis=0)  # a column the target does not read: kept where every row sent it
        groups.append(([n for n, on in zip(names, every_row, strict=True) if on], mask))
    return sorted(groups, key=lambda g: (-int(g[1].sum()), -len(g[0])))


def recorded(sent: pd.Series | None, rows: int) -> bool:
    """Whether every row of a sample of ``rows`` rows recorded the columns its request sent."""
    return sent is not None and len(sent) == rows and bool(sent.notna().all())


def _inferred(inputs: pd.DataFrame, requests: pd.Series | None, required: frozenset[str]) -> np.ndarray:
    """Which columns each row's request sent, read from the values (see the module)."""
    present = inputs.notna()
    for column in present.columns:
        if str(column) in required:
            present[column] = True
    if requests is not None and len(requests) == len(inputs):
        ids = requests.astype(object).where(requests.notna(), pd.Series(range(len(inputs)), index=requests.index))
        present = present.groupby(ids.to_numpy(), sort=False).transform("any")
    return present.to_numpy(dtype=bool)


def _row_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A group code per row of a boolean matrix, and each code's row of booleans."""
    found, codes = np.unique(keys, axis=0, return_inverse=True)
    return codes.reshape(-1), found


def score_groups(
    inputs: pd.DataFrame,
    requests: pd.Series | None,
    scorer: Scorer,
    required: frozenset[str] = frozenset(),
    sent: pd.Series | None = None,
    read: frozenset[str] | None = None,
) -> tuple[pd.DataFrame | None, np.ndarray, list[SchemaGroup]]:
    """Each column set's rows scored apart by ``scorer`` (once per set): the outputs of the rows
    scored (in sample order), which rows they are, and one :class:`SchemaGroup` per column set
    (``required``, ``sent``, ``read``: see :func:`schema_masks`)."""
    masks = schema_masks(inputs, requests, required, sent, read)
    inferred = not recorded(sent, len(inputs))
    every = {c for columns, _ in masks for c in columns if read is None or c in read}
    kept = np.zeros(len(inputs), dtype=bool)
    parts: list[pd.DataFrame] = []
    groups: list[SchemaGroup] = []
    for columns, mask in masks:
        rows = inputs.loc[mask, columns].reset_index(drop=True)
        outputs, refused, adaptation, where = scorer(rows)
        absent = sorted(every - set(columns))
        groups.append(SchemaGroup(columns, int(mask.sum()), absent, adaptation, refused, where, inferred, mask))
        if outputs is not None:
            kept |= mask
            parts.append(outputs.set_axis(np.flatnonzero(mask)))
    if not parts:
        return None, kept, groups
    after = pd.concat(parts).sort_index().reset_index(drop=True)
    return after, kept, groups


GROUP_LINES = 8
"""Column sets a preview lists one by one (the largest); the rest are one line."""


def group_lines(groups: list[SchemaGroup], limit: int = GROUP_LINES) -> list[tuple[str, bool]]:
    """``(line, refused)`` for the largest ``limit`` column sets, then one ``k more column sets``
    line (refused when any of them is)."""
    lines = [(g.said(), g.refused is not None) for g in groups[:limit]]
    rest = groups[limit:]
    if rest:
        refused = sum(g.rows for g in rest if g.refused is not None)
        tail = f", {refused:,} refused" if refused else ""
        lines.append((f"{len(rest)} more column sets ({sum(g.rows for g in rest):,} rows{tail})", refused > 0))
    return lines
