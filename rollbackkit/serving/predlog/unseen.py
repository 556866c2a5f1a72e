"""A categorical column's counts with the categories the reference never saw summed where the log lives.

The gate's categorical PSI counts every category on its own; one the reference never saw has a
reference share of 0, floored at :data:`~rollbackkit.analysis.drift_formulas.EPSILON`, so its term depends
only on its own rows ``n`` and its window's rows ``N``
(:func:`~rollbackkit.analysis.drift_formulas.psi_terms` at ``p = 0, q = n / N``). The log therefore sends,
per slice and window, the sum of those terms (``psi``) and their rows (the ``(other)`` bin's row
without a value), never the values one by one: a million unseen ids are two numbers per window.
Only the values the reference itself holds past its kept categories (``known``: bounded by the
reference) are still counted one by one (``u``). JS needs no more: an unseen category adds
``q / 2`` to JS squared, so their rows are enough.

Because the terms are not additive across windows or slices, the log groups by the answer's own
slices (the largest :data:`~rollbackkit.serving.predlog.binning.MAX_SLICES`, by the
:func:`~rollbackkit.analysis.slices.top_values` rule, ranked in SQL) and windows (``cuts``: runs of
equal windows merged where they are counted), so every cell's sum is the gate's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift_formulas import psi_terms
from rollbackkit.analysis.slices import top_values

_DOUBLE = {"duckdb": "DOUBLE", "postgresql": "DOUBLE PRECISION"}


class Sql(str):
    """A SQL expression that :func:`~rollbackkit.analysis.drift_formulas.psi_terms`'s arithmetic can build on."""

    def __sub__(self, other: object) -> Sql:  # type: ignore[override]
        return Sql(f"({self} - {other})")

    def __mul__(self, other: object) -> Sql:  # type: ignore[override]
        return Sql(f"({self} * {other})")

    def __truediv__(self, other: object) -> Sql:
        return Sql(f"({self} / {other})")


def unseen_psi_sql(rows: str, total: str, dialect: str) -> str:
    """SQL of one unseen category's PSI term: :func:`~rollbackkit.analysis.drift_formulas.psi_terms` with
    ``p = 0`` and ``q = rows / total``, rendered with the dialect's ``ln`` and ``greatest``."""
    double = _DOUBLE[dialect]

    def floor(value: Any, epsilon: float) -> Sql:
        return Sql(f"greatest({value}, CAST('{epsilon!r}' AS {double}))")

    q = Sql(f"CAST({rows} AS {double})") / Sql(f"CAST({total} AS {double})")
    term = psi_terms(Sql(f"CAST('0' AS {double})"), q, ln=lambda x: Sql(f"ln({x})"), floor=floor)
    return str(term)


def merged_window_sql(window: str, cuts: Sequence[int] | None) -> str:
    """The merged window of a row's equal window ``window`` (``cuts``: each merged window's first)."""
    if not cuts:
        return window
    steps = " ".join(f"WHEN {window} >= {int(c)} THEN {k}" for k, c in reversed(list(enumerate(cuts))))
    return f"CASE {steps} ELSE 0 END"


def merged_window(w: np.ndarray, cuts: Sequence[int] | None) -> np.ndarray:
    """:func:`merged_window_sql` in numpy."""
    if not cuts:
        return w
    return np.searchsorted(np.asarray(cuts, dtype="int64"), w, side="right") - 1


def text_list(values: Sequence[str], dialect: str) -> str:
    """Texts as a SQL list of literals (psycopg's ``%`` doubled)."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return listed if dialect == "duckdb" else listed.replace("%", "%%")


def categories_sql(
    cells: str, *, other: int, known: Sequence[str], by: bool, names: tuple[str, str, str, int], dialect: str
) -> str:
    """The answer's grouped rows of ``cells`` (``SELECT s, w, b, v``: merged window, bin, text):
    ``s`` (the answer's slice), ``w``, ``b``, ``u`` (a ``known`` value of the ``(other)`` bin, else
    null), ``n``, ``total`` (null) and ``psi`` (the ``(other)`` row without ``u``: the sum of its
    unseen categories' terms). ``names``: the one slice without ``by``, the missing slice, the rest's
    slice, the slices kept."""
    alone, missing, rest = (t.replace("'", "''") for t in names[:3])
    most = names[3]
    slice_ = f"coalesce(CAST(s AS TEXT), '{missing}')" if by else f"'{alone}'"
    grouped = (
        f"SELECT {slice_} AS s, w, b, CASE WHEN b = {other} THEN v END AS u, count(*) AS n FROM ({cells}) c0 "
        "GROUP BY 1, 2, 3, 4"
    )
    if by:
        order = 's COLLATE "C"' if dialect == "postgresql" else "s"
        totals = f"SELECT c1.*, sum(n) OVER (PARTITION BY s) AS st FROM ({grouped}) c1"
        ranked = (
            f"SELECT CASE WHEN dense_rank() OVER (ORDER BY st DESC, {order}) <= {int(most)} THEN s ELSE '{rest}' END "
            f"AS s, w, b, u, n FROM ({totals}) c2"
        )
        grouped = f"SELECT s, w, b, u, sum(n) AS n FROM ({ranked}) c3 GROUP BY 1, 2, 3, 4"
    is_known = f"u IN ({text_list(known, dialect)})" if known else "FALSE"
    flagged = f"SELECT s, w, b, u, n, sum(n) OVER (PARTITION BY s, w) AS cell, {is_known} AS k FROM ({grouped}) c4"
    term = unseen_psi_sql("n", "cell", dialect)
    return (
        f"SELECT s, w, b, CASE WHEN k THEN u END AS u, sum(n) AS n, NULL AS total, "
        f"sum(CASE WHEN u IS NOT NULL AND NOT k THEN {term} END) AS psi FROM ({flagged}) c5 GROUP BY 1, 2, 3, 4"
    )


def categories_frame(
    groups: pd.DataFrame, *, other: int, known: Sequence[str], by: bool, names: tuple[str, str, str, int]
) -> pd.DataFrame:
    """:func:`categories_sql` in pandas, from grouped counts with each ``(other)`` value on its own
    (``s``, ``w`` merged window, ``b``, ``u``, ``n``): the store's count beside its blobs."""
    alone, missing, rest, most = names
    if groups.empty:
        return pd.DataFrame(columns=["s", "w", "b", "u", "n", "total", "psi"])
    frame = groups[["s", "w", "b", "u", "n"]].copy()
    frame["s"] = frame["s"].astype(object).where(frame["s"].notna(), missing) if by else alone
    if by:
        kept = set(top_values(frame.groupby("s")["n"].sum(), most))
        frame["s"] = [s if s in kept else rest for s in frame["s"]]
    b = frame["b"].to_numpy(dtype="float64", na_value=np.nan)
    frame["u"] = frame["u"].astype(object).where((b == other) & frame["u"].notna(), None)
    keys = ["s", "w", "b", "u"]
    frame = frame.groupby(keys, dropna=False, sort=False)["n"].sum().reset_index()
    cell = frame.groupby(["s", "w"], sort=False)["n"].transform("sum").to_numpy(dtype="float64")
    listed = set(known)
    unseen = frame["u"].notna().to_numpy() & ~frame["u"].isin(listed).to_numpy()
    q = frame["n"].to_numpy(dtype="float64") / np.maximum(cell, 1.0)
    frame["psi"] = np.where(unseen, psi_terms(np.zeros_like(q), q), np.nan)
    frame["u"] = frame["u"].where(~unseen, None)
    out = frame.groupby(keys, dropna=False, sort=False).agg(n=("n", "sum"), psi=("psi", lambda x: x.sum(min_count=1)))
    return out.reset_index().assign(total=None)


def others_answer(groups: pd.DataFrame, slot: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """``others`` (each ``known`` value's rows per cell: ``[slice, window, value, rows]``) and
    ``unseen`` (``[slice, window, rows, psi]``: the unseen categories' rows and PSI terms, summed)
    of the answer (:func:`~rollbackkit.serving.predlog.binned_answer.answer`) from the groups' ``u`` and
    ``psi`` columns."""
    unseen: list[list[Any]] = []
    if "psi" in groups:
        b = pd.to_numeric(groups["b"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        terms = pd.to_numeric(groups["psi"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        at = np.flatnonzero(np.isfinite(terms) & groups["u"].isna().to_numpy() & ~np.isnan(b))
        n = groups["n"].to_numpy(dtype="int64")
        unseen = sorted([int(slot[k]), int(w[k]), int(n[k]), float(terms[k])] for k in at)
    if "u" not in groups:
        return {"others": [], "unseen": unseen}
    named = groups["u"].notna().to_numpy()
    found = pd.DataFrame(
        {"s": slot[named], "w": w[named], "u": groups["u"][named].astype(str), "n": groups["n"][named].astype("int64")}
    )
    found = found.groupby(["s", "w", "u"], sort=True)["n"].sum().reset_index()
    rows = [[int(s), int(k), str(u), int(n)] for s, k, u, n in found.itertuples(index=False)]
    return {"others": rows, "unseen": unseen}
