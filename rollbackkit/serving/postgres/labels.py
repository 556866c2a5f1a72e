"""Ground truth that arrives later, in the store: :meth:`PgLogLabels.add_labels`.

The same semantics and answer as the DuckDB log's
(:meth:`rollbackkit.serving.predlog.labels.LogLabels.add_labels`): labels join logged rows of
one bundle in one environment by ``request_id``/``row`` or by ``key`` (every original row of
any row table: a quarantined or backfilled row's label joins the original, a shadow row shares
its live row's id); every ingest appends and the latest label of a row (highest ``seq``) wins;
all or nothing, in one transaction. Rows written by any replica count.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from rollbackkit.serving.postgres.logbase import PgLogBase
from rollbackkit.serving.postgres.schema import ROW_TABLES
from rollbackkit.serving.predlog.labels import (
    incoming_frame,
    ingest_answer,
    json_texts,
    label_targets,
    logged_rows,
    refuse_wide_key,
    widest_key,
)

LATEST_LABELS = (
    'SELECT DISTINCT ON (request_id, "row") request_id, "row", label FROM labels WHERE name = %s AND env = %s '
    'ORDER BY request_id, "row", seq DESC'
)
"""Each labelled row's latest label in one bundle and environment (parameters: name, env)."""


_LOGGED = logged_rows("%s")
"""Every original logged row of one bundle and environment, in PostgreSQL's parameters."""


class PgLogLabels(PgLogBase):
    """The labels side of the PostgreSQL log."""

    def add_labels(
        self, name: str, env: str, labels: pd.DataFrame, on: str, *, all_rows: bool = False
    ) -> dict[str, Any]:
        """Store labels for logged rows of ``name`` in ``env``, all or nothing, in one transaction.

        Arguments, answer and errors: as
        :meth:`rollbackkit.serving.predlog.labels.LogLabels.add_labels` (``stored``,
        ``replaced``, ``unknown`` with ``unknown_sample``, ``duplicates``, ``missing``,
        ``rows_labelled``, ``max_rows_per_key``; InvalidInput when a key matches more than
        1,000 rows and ``all_rows`` is False).
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
        batch_id = uuid.uuid4().hex
        params = [name, env] * len(ROW_TABLES)
        with self._tx(long=True) as con:  # one ingest at a time per model: the last committed is the latest
            con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"labels {name} {env}",))
            _load(con, kept, ids)
            join = " AND ".join(f'p."{c}" = i."{c}"' for c in ids)
            unknown_ids = con.execute(
                f"SELECT {', '.join(f'i.{chr(34)}{c}{chr(34)}' for c in ids)} FROM incoming_labels i WHERE NOT EXISTS "
                f"(SELECT 1 FROM {_LOGGED} p WHERE {join}) ORDER BY i.ord",
                params,
            ).fetchall()
            targets = label_targets(on, "%s")
            replaced = _scalar(
                con,
                f"SELECT count(*) FROM ({targets}) t WHERE EXISTS (SELECT 1 FROM labels l WHERE l.name = %s "
                'AND l.env = %s AND l.request_id = t.request_id AND l."row" = t."row")',
                [*params, name, env],
            )
            stored = _scalar(con, f"SELECT count(*) FROM ({targets}) t", params)
            widest = widest_key(con, targets, params) if on == "key" else None
            refuse_wide_key(widest, all_rows)
            con.execute(
                'INSERT INTO labels (name, env, request_id, "row", label, received, batch_id, joined_on, "key") '
                'SELECT %s, %s, t.request_id, t."row", t.label, now(), %s, %s, t.label_key '
                f'FROM ({targets}) t ORDER BY t.ord, t.request_id, t."row"',
                [name, env, batch_id, on, *params],
            )
            labelled = _scalar(
                con,
                f"SELECT count(*) FROM ({LATEST_LABELS}) l WHERE EXISTS (SELECT 1 FROM {_LOGGED} p "
                'WHERE p.request_id = l.request_id AND p."row" = l."row")',
                [name, env, *params],
            )
        return ingest_answer(
            name, env, on, received=received, stored=stored, replaced=replaced, unknown_ids=unknown_ids,
            duplicates=duplicates, missing=missing, labelled=labelled, widest=widest,
        )  # fmt: skip


def _load(con: psycopg.Connection[Any], kept: pd.DataFrame, ids: list[str]) -> None:
    """The call's labels as the temporary table ``incoming_labels`` (dropped at commit)."""
    typed = ", ".join(f'"{c}" {"INTEGER" if c == "row" else "TEXT"}' for c in ids)
    con.execute(f"CREATE TEMP TABLE incoming_labels ({typed}, label TEXT, ord BIGINT) ON COMMIT DROP")
    columns = ", ".join(f'"{c}"' for c in [*ids, "label", "ord"])
    with con.cursor() as cur, cur.copy(f"COPY incoming_labels ({columns}) FROM STDIN") as copy:
        for record in kept[[*ids, "label", "ord"]].itertuples(index=False, name=None):
            copy.write_row([v.item() if isinstance(v, np.generic) else v for v in record])


def _scalar(con: psycopg.Connection[Any], sql: str, params: list[Any]) -> Any:
    row = con.execute(sql, params).fetchone()  # type: ignore[arg-type]  # SQL built here
    return row[0] if row else 0
