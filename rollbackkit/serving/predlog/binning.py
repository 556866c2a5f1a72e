"""Counts binned where the log lives: what to count (:class:`BinRequest`) and the SQL both logs run.

``binned`` (:meth:`~rollbackkit.serving.predlog.queries.LogReader.binned`, and the store's
:meth:`~rollbackkit.serving.postgres.reads.PgLogReads.binned`) counts the rows of ``name`` in
``env`` per slice, time window and bin, so ten million rows become a few thousand numbers
before they leave the log's process. The bin rule is :mod:`rollbackkit.analysis.drift_series`'s
(:func:`~rollbackkit.analysis.drift_series.bin_index`), written here once more as SQL; a test
holds the two equal. Rows: production and staged, originals only (no backfilled copy), scored
without error (a shadow's rows are never counted). The answer they give:
:mod:`rollbackkit.serving.predlog.binned_answer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift_series import Binning
from rollbackkit.analysis.slices import MISSING, OTHER
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog.schema import quote
from rollbackkit.serving.predlog.unseen import (
    categories_frame,
    categories_sql,
    merged_window,
    merged_window_sql,
)
from rollbackkit.serving.predlog.windows import micros as micros  # re-exported: the logs' callers use b.*
from rollbackkit.serving.predlog.windows import moment, window_sql
from rollbackkit.serving.predlog.windows import time_range as time_range
from rollbackkit.serving.predlog.windows import window_index as window_index

MAX_SLICES = 12
"""Slices kept by row count (:func:`~rollbackkit.analysis.slices.top_values`); the rest: :data:`OTHER_SLICES`."""

MAX_EDGES = 257
"""Numeric edges (or categories) a request may give at most: 256 bins."""

MAX_CELLS = 1_000_000
"""Slices x windows x bins an answer may hold at most (its counts and sums: tens of MB of JSON)."""

MAX_KNOWN = 100_000
"""Categorical: the reference's values past its kept categories a request may name (``known``)."""

ALL = "(all rows)"
"""The one slice without ``by``."""

MISSING_SLICE = MISSING
OTHER_SLICES = OTHER
"""The slice names of :mod:`rollbackkit.analysis.slices` (one naming for every slice)."""

PRIMARY = "primary_output"
"""The log's numeric copy of the primary output, as a ``column``."""

LOG_SLICES = ("version", "deployment")
"""Row columns of the log a ``by`` may name (when no input feature has that name)."""

PG_JSON = (
    "CASE WHEN strpos(outputs, 'Infinity') > 0 "
    "THEN regexp_replace(outputs, ':(-?Infinity)(?=[,}])', ':\"\\\\u0001\\1\"', 'g') ELSE outputs END"
)
"""``outputs`` as PostgreSQL's JSON reads it: an infinite number (``Infinity``, a token DuckDB's
JSON and Python's read, PostgreSQL's not) becomes a marked string (``queries._PG_VALUE`` unmarks it)."""

_TYPES = {"duckdb": ("DOUBLE", "VARCHAR"), "postgresql": ("DOUBLE PRECISION", "TEXT")}


@dataclass(frozen=True)
class BinRequest:
    """What to count: a column (``primary_output``, an input feature, or with ``output`` an output
    read from each row's outputs), its :class:`~rollbackkit.analysis.drift_series.Binning`, the time
    range cut into ``windows`` equal windows, an optional slice column and versions."""

    name: str
    env: str
    column: str
    binning: Binning
    start: datetime | None
    end: datetime | None
    windows: int
    by: str | None
    versions: tuple[str, ...]
    output: bool
    known: tuple[str, ...] = ()
    """Categorical: the reference's values past ``categories``, counted one by one (``others``); every
    other value of the ``(other)`` bin is one the reference never saw (summed: :mod:`.unseen`)."""
    cuts: tuple[int, ...] = ()
    """The first of the ``windows`` equal windows in each window of the answer (empty: each its own)."""

    @property
    def answer_windows(self) -> int:
        """Windows of the answer (``cuts`` merge runs of the equal windows)."""
        return len(self.cuts) or self.windows

    @classmethod
    def of(
        cls,
        name: str,
        env: str,
        column: str,
        edges: list[Any],
        start: str | datetime | None,
        end: str | datetime | None,
        windows: int,
        by: str | None,
        versions: list[str] | None,
        output: bool,
        known: list[str] | None = None,
        cuts: list[int] | None = None,
    ) -> BinRequest:
        """Check the arguments (as a log call or an admin body gives them)."""
        if not 1 <= int(windows) <= 1000:
            raise InvalidInput(f"windows={windows} is out of range.", "Use 1 to 1000 windows.")
        if not edges:
            raise InvalidInput("No bins were given.", "Pass numeric edges or categories.")
        if len(edges) > MAX_EDGES:
            raise InvalidInput(f"{len(edges)} edges or categories is too many.", f"Give at most {MAX_EDGES}.")
        if all(isinstance(e, int | float) and not isinstance(e, bool) for e in edges):
            if len(edges) < 2 or not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
                raise InvalidInput(
                    "Numeric edges must be finite and strictly increasing.", "Use the reference's p1..p99, sorted."
                )
            binning = Binning("numeric", edges=tuple(float(e) for e in edges))
        else:
            binning = Binning("categorical", categories=tuple(str(e) for e in edges))
        cells = (MAX_SLICES + 1 if by else 1) * int(windows) * binning.n_bins
        if cells > MAX_CELLS:
            raise InvalidInput(
                f"{windows} windows x {binning.n_bins} bins{' x 13 slices' if by else ''} is {cells:,} cells.",
                f"Ask for at most {MAX_CELLS:,} cells: fewer windows or bins.",
            )
        first, last = moment(start, "start"), moment(end, "end")
        if len(known or ()) > MAX_KNOWN:
            raise InvalidInput(f"{len(known or ())} known categories is too many.", f"Give at most {MAX_KNOWN:,}.")
        marks = [int(c) for c in cuts or ()]
        if marks and (marks[0] != 0 or bool(np.any(np.diff(marks) <= 0)) or marks[-1] >= int(windows)):
            raise InvalidInput(f"cuts={marks[:5]} do not split the windows.", "Start at 0, increasing, below windows.")
        return cls(
            name, env, column, binning, first, last, int(windows), by, tuple(versions or ()), output,
            tuple(str(k) for k in known or ()), tuple(marks),
        )  # fmt: skip


PG_MICROS = "CAST(EXTRACT(EPOCH FROM time) * 1000000 AS BIGINT)"
"""PostgreSQL's ``t_us`` of :func:`rows_sql` (the store's first pass takes it of each blob's first and last time)."""


def rows_sql(req: BinRequest, mark: str, dialect: str) -> tuple[str, list[Any]]:
    """The rows to count (production and staged), as a subquery with ``t_us`` (microseconds)."""
    where = f"name = {mark} AND env = {mark} AND replaces IS NULL AND error IS NULL"
    params: list[Any] = [req.name, req.env]
    if req.versions:
        where += f" AND version IN ({', '.join([mark] * len(req.versions))})"
        params.extend(req.versions)
    if req.start is not None:
        where += f" AND time >= {mark}"
        params.append(req.start)
    if req.end is not None:
        where += f" AND time <= {mark}"
        params.append(req.end)
    micros = "epoch_us(time)" if dialect == "duckdb" else PG_MICROS
    columns = f'request_id, "row", {micros} AS t_us, version, deployment, inputs_table, primary_output, outputs'
    sql = " UNION ALL ".join(f"SELECT {columns} FROM {t} WHERE {where}" for t in ("predictions", "predictions_staging"))
    return f"({sql})", params * 2


def bin_sql(binning: Binning, dialect: str) -> str:
    """SQL giving the bin of ``v`` (cast by :func:`source_sql`; NULL when missing), by the rule of
    :func:`~rollbackkit.analysis.drift_series.bin_index`."""
    double = _TYPES[dialect][0]
    if binning.kind == "categorical":
        listed = ", ".join("'" + c.replace("'", "''") + "'" for c in binning.categories)
        listed = listed if dialect == "duckdb" else listed.replace("%", "%%")  # psycopg's placeholders
        found = (
            f"list_position([{listed}], v)" if dialect == "duckdb" else f"array_position(ARRAY[{listed}]::TEXT[], v)"
        )
        return f"CASE WHEN v IS NULL THEN NULL ELSE coalesce({found} - 1, {len(binning.categories)}) END"
    nan = "isnan(v)" if dialect == "duckdb" else "v = CAST('NaN' AS DOUBLE PRECISION)"
    edges = [f"CAST('{e!r}' AS {double})" for e in binning.edges]

    def search(lo: int, hi: int) -> str:  # bins lo..hi: the number of edges below v, by binary search
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN v <= {edges[mid]} THEN {search(lo, mid)} ELSE {search(mid + 1, hi)} END"

    return f"CASE WHEN v IS NULL OR {nan} THEN NULL ELSE {search(0, len(edges))} END"


def is_feature(req: BinRequest, name: str | None, tables: dict[str, set[str]]) -> bool:
    """Whether ``name`` (the column or ``by``) is read from the inputs tables."""
    if name is None:
        return False
    if name == req.column and (req.output or name == PRIMARY):
        return False
    return name not in LOG_SLICES or any(name in cols for cols in tables.values())


def check_columns(req: BinRequest, tables: dict[str, set[str]]) -> None:
    """An input column (or ``by``) no inputs table holds is an error naming the known ones."""
    known = sorted(set().union(*tables.values())) if tables else []
    for name, what in ((req.column, "input column"), (req.by, "slice column (by)")):
        if is_feature(req, name, tables) and not any(name in cols for cols in tables.values()):
            raise unknown_column(str(name), known + (list(LOG_SLICES) if what.startswith("slice") else []), what)


def source_sql(req: BinRequest, tables: dict[str, set[str]], dialect: str, *, per_request: bool = True) -> str:
    """``SELECT t_us, s, v`` over the CTE ``r`` of :func:`rows_sql`: the slice text and the value
    (cast to a double, or text for categories), joined to the inputs tables when either is a feature.

    In DuckDB, when the value is a feature, the rows are first grouped per request and the inputs
    joined on ``request_id`` alone (ten times faster at 10M rows): for each request whose counted
    rows share one time (and ``by`` value, when ``by`` is a log column) and are the consecutive rows
    ``lo..hi``; any other request goes through the row join (``per_request=False``: every request does).
    """
    double, text = _TYPES[dialect]
    kind = double if req.binning.kind == "numeric" else text
    cast = "TRY_CAST" if dialect == "duckdb" and kind == double else "CAST"

    def value(table_columns: set[str] | None) -> str:
        if req.column == PRIMARY and not req.output:
            return f"CAST(r.primary_output AS {kind})"
        if req.output:
            return f"CAST({output_sql(req.column, dialect, label=kind == text)} AS {kind})"
        if not (table_columns and req.column in table_columns):
            return "NULL"
        return (
            label_sql(f"t.{quote(req.column)}", dialect) if kind == text else f"{cast}(t.{quote(req.column)} AS {kind})"
        )

    def slice_(table_columns: set[str] | None, rows: str = "r") -> str:
        if req.by is None:
            return "NULL"
        if is_feature(req, req.by, tables):
            return label_sql(f"t.{quote(req.by)}", dialect) if table_columns and req.by in table_columns else "NULL"
        return f"CAST({rows}.{req.by} AS {text})"

    if not (is_feature(req, req.column, tables) or is_feature(req, req.by, tables)):
        return f"SELECT r.t_us, {slice_(None)} AS s, {value(None)} AS v FROM r"
    wanted = {req.column, req.by} - {None}
    holding = sorted(t for t, cols in tables.items() if cols & wanted)
    listed = ", ".join(f"'{t}'" for t in holding)
    rest = f"SELECT r.t_us, NULL AS s, NULL AS v FROM r WHERE r.inputs_table NOT IN ({listed})"
    rows_join = 'ON t.request_id = r.request_id AND t."row" = r."row"'
    if not (per_request and dialect == "duckdb" and is_feature(req, req.column, tables)):
        branches = [
            f"SELECT r.t_us, {slice_(tables[t])} AS s, {value(tables[t])} AS v FROM r JOIN {t} t {rows_join} "
            f"WHERE r.inputs_table = '{t}'"
            for t in holding
        ]
        return " UNION ALL ".join([*branches, rest])
    log_by = req.by is not None and not is_feature(req, req.by, tables)
    same_by = f" AND min(r.{req.by}) IS NOT DISTINCT FROM max(r.{req.by}) AND count(r.{req.by}) IN (0, count(*))"
    by_value = f"min(r.{req.by}) AS {req.by}, " if log_by else ""
    groups = (
        f"SELECT r.request_id, r.inputs_table, min(r.t_us) AS t_us, {by_value}"
        'min(r."row") AS lo, max(r."row") AS hi, (min(r.t_us) = max(r.t_us) AND count(*) = max(r."row") - '
        f'min(r."row") + 1{same_by if log_by else ""}) AS whole FROM r WHERE r.inputs_table IN ({listed}) GROUP BY 1, 2'
    )
    branches = []
    for t in holding:
        branches += [
            f"SELECT g.t_us, {slice_(tables[t], 'g')} AS s, {value(tables[t])} AS v FROM g JOIN {t} t "
            f'ON t.request_id = g.request_id AND t."row" BETWEEN g.lo AND g.hi '
            f"WHERE g.whole AND g.inputs_table = '{t}'",
            f"SELECT r.t_us, {slice_(tables[t])} AS s, {value(tables[t])} AS v FROM r JOIN g ON NOT g.whole "
            f"AND g.request_id = r.request_id AND g.inputs_table = r.inputs_table JOIN {t} t {rows_join} "
            f"WHERE r.inputs_table = '{t}'",
        ]
    return f"WITH g AS ({groups}) " + " UNION ALL ".join([*branches, rest])


def counts_sql(req: BinRequest, source: str, start_us: int, end_us: int, dialect: str) -> str:
    """The grouped counts (``s``, ``w``, ``b``, ``n``) of ``source``, and ``total``: the sum of the
    cell's finite values (numeric bins); categories: the answer's slices, a ``known`` value of the
    ``(other)`` bin on its own (``u``) and the unseen ones summed (``psi``: :mod:`.unseen`)."""
    window = merged_window_sql(window_sql(start_us, end_us, req.windows, dialect), req.cuts)
    bins = bin_sql(req.binning, dialect)
    if req.binning.kind == "categorical":
        cells = f"SELECT s, {window} AS w, {bins} AS b, v FROM ({source}) x"
        return categories_sql(cells, other=len(req.binning.categories), **_unseen_args(req), dialect=dialect)
    finite = "isfinite(v)" if dialect == "duckdb" else "v > '-Infinity'::float8 AND v < 'Infinity'::float8"
    total = f"sum(CASE WHEN {finite} THEN v END)"
    return f"SELECT s, {window} AS w, {bins} AS b, count(*) AS n, {total} AS total FROM ({source}) x GROUP BY 1, 2, 3"


def output_sql(column: str, dialect: str, *, label: bool = False) -> str:
    """One output of a row as text (``yes``, ``true``, ``2``); with ``label``, a JSON boolean as the
    labels spell it (``True``, :func:`~rollbackkit.analysis.series.label_text`)."""
    if dialect == "duckdb":
        pointer = "/" + column.replace("~", "~0").replace("/", "~1")
        found = "json_extract_string(r.outputs, '" + pointer.replace("'", "''") + "')"
        kind = "json_type(r.outputs, '" + pointer.replace("'", "''") + "')"
        return f"CASE WHEN {kind} = 'BOOLEAN' THEN {_spelled(found)} ELSE {found} END" if label else found
    key = column.replace("'", "''").replace("%", "%%")
    value = f"CAST({PG_JSON.replace('outputs', 'r.outputs')} AS JSON)"
    found = f"({value} ->> '{key}')"
    return (
        f"CASE WHEN json_typeof({value} -> '{key}') = 'boolean' THEN {_spelled(found)} ELSE {found} END"
        if label
        else found
    )


def label_sql(expr: str, dialect: str) -> str:
    """A typed column as text the way :func:`~rollbackkit.analysis.series.label_text` spells it
    (a boolean ``True``/``False``; the SQL casts write ``true``), so the log's slices and categories
    read as the labels, the rollback preview and the reference do."""
    text = _TYPES[dialect][1]
    typed = f"typeof({expr}) = 'BOOLEAN'" if dialect == "duckdb" else f"pg_typeof({expr}) = 'boolean'::regtype"
    return f"CASE WHEN {typed} THEN {_spelled(f'CAST({expr} AS {text})')} ELSE CAST({expr} AS {text}) END"


def _spelled(text: str) -> str:
    return f"CASE WHEN {text} = 'true' THEN 'True' WHEN {text} = 'false' THEN 'False' ELSE {text} END"


def _unseen_args(req: BinRequest) -> dict[str, Any]:
    return {"known": req.known, "by": req.by is not None, "names": (ALL, MISSING_SLICE, OTHER_SLICES, MAX_SLICES)}


def reduce_categories(req: BinRequest, groups: pd.DataFrame) -> pd.DataFrame:
    """Grouped counts with each ``(other)`` value on its own (``u``; ``w`` the equal window) as
    :func:`counts_sql` gives them for categories (the count beside the store's blobs)."""
    if req.binning.kind != "categorical":
        return groups.assign(w=merged_window(groups["w"].to_numpy(dtype="int64"), req.cuts)) if len(groups) else groups
    frame = groups.assign(w=merged_window(groups["w"].to_numpy(dtype="int64"), req.cuts)) if len(groups) else groups
    return categories_frame(frame, other=len(req.binning.categories), **_unseen_args(req))


def unknown_column(column: str, known: list[str], what: str = "column") -> InvalidInput:
    """The one-line error for a column the log does not hold (never a substituted one)."""
    listed = ", ".join(sorted(known)[:20]) or "none"
    return InvalidInput(f"The prediction log holds no {what} {column!r}.", f"Known columns: {listed}.")
