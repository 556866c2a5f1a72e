"""The answer of a binned count (:mod:`rollbackkit.serving.predlog.binning`): the log's grouped
counts become JSON-ready slices x windows x bins, the largest slices kept by one rule
(:func:`~rollbackkit.analysis.slices.top_values`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.slices import top_values
from rollbackkit.serving.predlog.binning import ALL, MAX_SLICES, MISSING_SLICE, OTHER_SLICES, BinRequest
from rollbackkit.serving.predlog.unseen import others_answer
from rollbackkit.serving.predlog.windows import iso


def answer(req: BinRequest, groups: pd.DataFrame, start_us: int | None, end_us: int | None) -> dict[str, Any]:
    """The JSON-ready answer from grouped counts (columns ``s`` slice text or None, ``w`` window,
    ``b`` bin or null for a missing value, ``n``, optional ``total``): ``{"kind", "column", "start",
    "end", "windows", "slices", "counts" [slice][window][bin], "sums" [slice][window][bin],
    "n" [slice][window], "missing" [slice][window], "edges" or "categories"}``; no slice at all when
    nothing was logged in the range. ``sums``: each cell's sum of its finite values (an outer bin's
    mass sits at ``sums / counts``; an infinite value is counted in its outer bin, not summed);
    None for categories. Categories: ``others``, ``[slice, window, value, rows]`` of each ``known``
    value in the ``(other)`` bin, and ``unseen``, ``[slice, window, rows, psi]``: the rows of the
    categories the reference never saw and the sum of their PSI terms (:mod:`.unseen`). ``cuts``:
    the request's (each window's first equal window), or None."""
    binning, windows = req.binning, req.answer_windows
    bins, numeric = binning.n_bins, binning.kind == "numeric"
    out: dict[str, Any] = {
        "kind": binning.kind,
        "column": req.column,
        "by": req.by,
        "windows": windows,
        "cuts": list(req.cuts) or None,
        "fine_windows": req.windows,
        "start": iso(start_us),
        "end": iso(end_us),
        "edges" if binning.kind == "numeric" else "categories": list(binning.edges or binning.categories),
    }
    if groups.empty:
        empty: dict[str, Any] = {"slices": [], "counts": [], "sums": [] if numeric else None, "n": [], "missing": []}
        return {**out, **empty, **({} if numeric else {"others": [], "unseen": []})}
    slices = groups["s"].astype(object).where(groups["s"].notna(), MISSING_SLICE if req.by else ALL).astype(str)
    totals = groups.assign(s=slices).groupby("s")["n"].sum()
    ranked = "psi" in groups  # categories: the log ranked the slices (:mod:`.unseen`)
    kept = sorted(set(totals.index) - {OTHER_SLICES} if ranked else top_values(totals, MAX_SLICES)) if req.by else [ALL]
    names = kept + ([OTHER_SLICES] if len(totals) > len(kept) else [])
    position = {s: k for k, s in enumerate(kept)}
    slot = np.array([position.get(s, len(kept)) for s in slices], dtype="int64")
    w = groups["w"].to_numpy(dtype="int64")
    b = pd.to_numeric(groups["b"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    n = groups["n"].to_numpy(dtype="int64")
    missing_rows = np.isnan(b)
    counts = np.zeros((len(names), windows, bins), dtype="int64")
    np.add.at(counts, (slot[~missing_rows], w[~missing_rows], b[~missing_rows].astype("int64")), n[~missing_rows])
    missing = np.zeros((len(names), windows), dtype="int64")
    np.add.at(missing, (slot[missing_rows], w[missing_rows]), n[missing_rows])
    sums = None
    if numeric:
        sums = np.zeros((len(names), windows, bins), dtype="float64")
        total = groups["total"] if "total" in groups else pd.Series(0.0, index=groups.index)
        values = pd.to_numeric(total, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        kept_rows = ~missing_rows
        np.add.at(
            sums,
            (slot[kept_rows], w[kept_rows], b[kept_rows].astype("int64")),
            np.nan_to_num(values[kept_rows], nan=0.0),
        )
    return {
        **out,
        "slices": names,
        "counts": counts.tolist(),
        "sums": None if sums is None else sums.tolist(),
        "n": counts.sum(axis=2).tolist(),
        "missing": missing.tolist(),
        **({} if numeric else others_answer(groups, slot, w)),
    }
