"""Ground truth that arrives later: the ``labels`` table, beside the logged rows, never in them.

A label belongs to one logged row, ``(request_id, row)``, of one bundle in one environment.
Every ingest appends (the older label of a row stays as history); the LATEST label of a row
(highest ``seq``) is the one a window joins (:data:`LATEST_LABELS`). ``label`` is the value's
JSON text, so its type comes back: ``"yes"`` stays ``str``, ``true`` ``bool``, ``1`` ``int``.

A label for a quarantined or backfilled row joins the original row (``replaces IS NULL``)
by ``request_id`` and ``row``; a shadow row shares its live row's id and so its label.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog.schema import ROW_TABLES, scalar
from rollbackkit.serving.predlog.writer import LogWriter

JOINS = ("request_id", "key")
"""How labels find their rows: by request id (and row) or by the request's key."""

UNKNOWN_SAMPLE = 10
"""Unknown ids reported by name (the rest are counted)."""

KEY_ROWS = 1000
"""The most logged rows one key may label unless ``all_rows`` says so (a customer id is not a prediction id)."""

LATEST_LABELS = (
    'SELECT request_id, "row", arg_max(label, seq) AS label FROM labels WHERE name = ? AND env = ? GROUP BY ALL'
)
"""Each labelled row's latest label in one bundle and environment (parameters: name, env)."""

WINDOW_LABELS = (
    'SELECT l.request_id, l."row", arg_max(l.label, l.seq) AS label FROM labels l WHERE l.name = ? AND l.env = ? '
    'AND EXISTS (SELECT 1 FROM window_rows w WHERE w.request_id = l.request_id AND w."row" = l."row") GROUP BY ALL'
)
"""The latest label of each row of the temporary ``window_rows`` (parameters: name, env): only
the window's labels are aggregated, however many the table holds."""


def logged_rows(placeholder: str = "?") -> str:
    """Every original logged row (any row table) as a subquery: request_id, row, key (parameters:
    name, env per row table; ``placeholder``: ``?`` for DuckDB, ``%s`` for PostgreSQL)."""
    name_env = f"name = {placeholder} AND env = {placeholder}"
    parts = [f'SELECT request_id, "row", "key" FROM {t} WHERE {name_env} AND replaces IS NULL' for t in ROW_TABLES]
    return "(" + " UNION ALL ".join(parts) + ")"


class LogLabels(LogWriter):
    """The labels side of the log: :meth:`add_labels`."""

    def add_labels(
        self, name: str, env: str, labels: pd.DataFrame, on: str, *, all_rows: bool = False
    ) -> dict[str, Any]:
        """Store labels for logged rows of ``name`` in ``env``, all or nothing, in one transaction.

        Args:
            name: Bundle name.
            env: Environment.
            labels: ``on="request_id"``: columns ``request_id``, ``label`` and optionally
                ``row`` (default 0); ``on="key"``: ``key`` and ``label`` (labels every row
                logged under that key). Labels are typed values (str, bool, int, float), already
                checked against the version's outputs; None is no label (skipped, counted).
            on: ``request_id`` or ``key``.
            all_rows: With ``on="key"``, let one key label more than :data:`KEY_ROWS` rows.

        Returns:
            ``{"name", "env", "on", "received", "stored", "replaced", "unknown",
            "unknown_sample", "duplicates", "missing", "rows_labelled", "max_rows_per_key"}``: ``replaced`` rows
            had a label (the new one wins, the older stays as history); ``unknown`` ids match
            no logged row (not stored; up to 10 in ``unknown_sample``, ``request_id:row`` or
            the key); ``duplicates`` lines a later line of the same call overrode (the last
            wins); ``missing`` lines without a label; ``rows_labelled`` logged rows of the
            bundle in ``env`` that have a label now; ``max_rows_per_key`` the most rows one key
            labelled (0 by request id).

        Raises:
            InvalidInput: A key matches more than :data:`KEY_ROWS` logged rows and ``all_rows``
                is False (nothing is stored).
        """
        incoming = incoming_frame(labels, on)
        received = len(labels)
        missing = int(incoming["label"].isna().sum())
        incoming = incoming[incoming["label"].notna()]
        ids = ["request_id", "row"] if on == "request_id" else ["key"]
        kept = incoming.drop_duplicates(ids, keep="last")
        duplicates = len(incoming) - len(kept)
        kept = kept.assign(label=json_texts(kept["label"]), ord=np.arange(len(kept), dtype="int64"))
        self.flush()
        now, batch_id = datetime.now(UTC), uuid.uuid4().hex
        with self._tx() as con:
            con.register("incoming_labels", kept[[*ids, "label", "ord"]])
            try:
                targets = label_targets(on)
                params = [name, env] * len(ROW_TABLES)
                unknown_ids = con.execute(
                    f"SELECT {', '.join(f'i.{c}' for c in _quoted(ids))} FROM incoming_labels i WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {logged_rows()} p WHERE {' AND '.join(f'p.{c} = i.{c}' for c in _quoted(ids))}) "
                    "ORDER BY i.ord",
                    params,
                ).fetchall()
                replaced = scalar(
                    con,
                    f"SELECT count(*) FROM ({targets}) t WHERE EXISTS (SELECT 1 FROM labels l WHERE l.name = ? "
                    'AND l.env = ? AND l.request_id = t.request_id AND l."row" = t."row")',
                    [*params, name, env],
                )
                base = scalar(con, "SELECT coalesce(max(seq), 0) FROM labels", [])
                stored = scalar(con, f"SELECT count(*) FROM ({targets})", params)
                widest = widest_key(con, targets, params) if on == "key" else None
                refuse_wide_key(widest, all_rows)
                con.execute(
                    f'INSERT INTO labels SELECT ?, ?, t.request_id, t."row", t.label, ?, ?, ? + row_number() OVER '
                    f'(ORDER BY t.ord, t.request_id, t."row"), ?, t.label_key FROM ({targets}) t',
                    [name, env, now, batch_id, base, on, *params],
                )
                labelled = scalar(
                    con, f"SELECT count(*) FROM ({LATEST_LABELS}) l WHERE EXISTS (SELECT 1 FROM {logged_rows()} p "
                    'WHERE p.request_id = l.request_id AND p."row" = l."row")',
                    [name, env, *params],
                )  # fmt: skip
            finally:
                con.unregister("incoming_labels")
        return ingest_answer(
            name, env, on, received=received, stored=stored, replaced=replaced, unknown_ids=unknown_ids,
            duplicates=duplicates, missing=missing, labelled=labelled, widest=widest,
        )  # fmt: skip


def _quoted(columns: list[str]) -> list[str]:
    return [f'"{c}"' for c in columns]


def label_targets(on: str, placeholder: str = "?") -> str:
    """The logged rows each incoming label (table ``incoming_labels``) lands on, in either log's SQL
    (parameters: name, env per row table; ``placeholder`` as :func:`logged_rows`)."""
    if on == "request_id":
        return (
            'SELECT DISTINCT i.request_id, i."row", i.label, i.ord, NULL::VARCHAR AS label_key FROM incoming_labels i '
            f'JOIN {logged_rows(placeholder)} p ON p.request_id = i.request_id AND p."row" = i."row"'
        )
    return (  # one key labels every row logged under it (a shadow row shares its live row's id)
        'SELECT DISTINCT p.request_id, p."row", i.label, i.ord, i."key" AS label_key FROM incoming_labels i '
        f'JOIN {logged_rows(placeholder)} p ON p."key" = i."key"'
    )


def widest_key(con: Any, targets: str, params: list[Any]) -> tuple[str, int] | None:
    """The key that labels the most logged rows and how many (None when none matched), on either log."""
    rows = con.execute(
        f"SELECT label_key, count(*) AS n FROM ({targets}) t GROUP BY label_key ORDER BY n DESC, label_key LIMIT 1",
        params,
    ).fetchall()  # fetched to the end: the transaction goes on on this connection
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def refuse_wide_key(widest: tuple[str, int] | None, all_rows: bool) -> None:
    """Refuse a key that matches more than :data:`KEY_ROWS` logged rows, unless ``all_rows``.

    Raises:
        InvalidInput: Naming the key and its rows.
    """
    if widest is not None and widest[1] > KEY_ROWS and not all_rows:
        raise InvalidInput(
            f"Key {widest[0]!r} matches {widest[1]:,} logged rows (more than {KEY_ROWS:,}); "
            "a key labels every row logged under it, and a customer id is not a prediction id.",
            "Label by request_id, or pass --all-rows-of-key (all_rows=True) if every row is meant.",
        )


def ingest_answer(
    name: str,
    env: str,
    on: str,
    *,
    received: int,
    stored: int,
    replaced: int,
    unknown_ids: list[tuple[Any, ...]],
    duplicates: int,
    missing: int,
    labelled: int,
    widest: tuple[str, int] | None,
) -> dict[str, Any]:
    """``add_labels``' answer, the same from either log (``unknown_sample``: the first unknown ids as text)."""
    return {
        "name": name,
        "env": env,
        "on": on,
        "received": received,
        "stored": int(stored),
        "replaced": int(replaced),
        "unknown": len(unknown_ids),
        "unknown_sample": [_id_text(on, r) for r in unknown_ids[:UNKNOWN_SAMPLE]],
        "duplicates": duplicates,
        "missing": missing,
        "rows_labelled": int(labelled),
        "max_rows_per_key": widest[1] if widest is not None else 0,
    }


def _id_text(on: str, values: tuple[Any, ...]) -> str:
    return f"{values[0]}:{values[1]}" if on == "request_id" else str(values[0])


def incoming_frame(labels: pd.DataFrame, on: str) -> pd.DataFrame:
    """The join columns (as text; ``row`` as int) and ``label``; InvalidInput naming what is wrong."""
    if on not in JOINS:
        raise InvalidInput(f"Labels join on request_id or key, not {on!r}.", "Pass --on request_id or --on key.")
    need = [on, "label"]
    absent = [c for c in need if c not in labels.columns]
    if absent:
        have = ", ".join(map(str, labels.columns)) or "none"
        raise InvalidInput(
            f"The labels have no {' or '.join(repr(c) for c in absent)} column (columns: {have}).",
            f"Give a {on!r} column and a 'label' column{' (and optionally row)' if on == 'request_id' else ''}.",
        )
    if labels.empty:
        raise InvalidInput("There are no labels to store.", "Give at least one row with an id and a label.")
    ids = labels[on]
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        raise InvalidInput(f"Label {_position(labels, blank)} has no {on}.", f"Every label needs the {on} it is for.")
    frame = pd.DataFrame({on: ids.astype(str).to_numpy(dtype=object), "label": labels["label"].to_numpy(dtype=object)})
    if on == "request_id":
        frame["row"] = _rows(labels)
    return frame


def _rows(labels: pd.DataFrame) -> np.ndarray:
    """The ``row`` column as int64 (0 where the labels have none); InvalidInput for a bad one."""
    if "row" not in labels.columns:
        return np.zeros(len(labels), dtype="int64")
    numbers = pd.to_numeric(labels["row"], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if bad.any():
        at = _position(labels, bad)
        raise InvalidInput(
            f"Label {at} has row {labels['row'][bad].iloc[0]!r}, not a row number.",
            "row is the row's position in its request: 0, 1, ...",
        )
    return numbers.to_numpy(dtype="int64")


def _position(labels: pd.DataFrame, mask: pd.Series) -> str:
    return str(labels.index[np.flatnonzero(mask.to_numpy())[0]])


def json_texts(values: pd.Series) -> list[str]:
    """Each label as JSON text (one ``json.dumps`` per distinct value of each type: ``1``,
    ``1.0`` and ``True`` stay three values); InvalidInput for a value that is not a finite str,
    bool, int or float."""
    done: dict[tuple[type, Any], str] = {}
    out = []
    for value in values.to_numpy(dtype=object):
        key = (type(value), value)
        text = done.get(key)
        if text is None:
            text = done[key] = _json_text(value)
        out.append(text)
    return out


def _json_text(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"The label {value!r} is not a finite number.", "Send a finite number or leave it empty.")
    if not isinstance(value, str | bool | int | float):
        raise InvalidInput(f"The label {value!r} is not text, a boolean or a number.", "Send plain values.")
    return json.dumps(value)


def decode_labels(texts: pd.Series) -> np.ndarray:
    """Labels' JSON texts (null: no label) as an object array of typed values (None: no label)."""
    codes, uniques = pd.factorize(texts.to_numpy(dtype=object), use_na_sentinel=True)
    values = np.array([json.loads(t) for t in uniques] + [None], dtype=object)
    return values[codes]  # code -1 (no label) picks the trailing None
