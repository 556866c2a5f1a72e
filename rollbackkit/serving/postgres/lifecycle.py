"""A logged version's life in the store: promoted, quarantined, backfilled, pruned.

The DuckDB log's semantics (:mod:`rollbackkit.serving.predlog.lifecycle`), one PostgreSQL
transaction per step, safe with several replicas writing at once:

- :meth:`promote` locks the deployment's ``log_deployments`` row first: a batch being committed
  with staged rows of it (its writer read the stage ``FOR SHARE``) commits before the move, and
  a later batch sees the stage ``production``.
- :meth:`quarantine` locks ``log_quarantine`` (``EXCLUSIVE``) first: every batch that read the
  quarantines before commits before the rows are marked, and every later one sees the version
  quarantined, so no late row of a bad version stays ``ok``.
- :meth:`backfill` marks the originals ``backfilled`` and writes only the corrections of the
  rows it marked, in one transaction per batch: run twice, or from two replicas at once, each
  row is corrected once (``backfill_audit`` says old -> new).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput, StoreError
from rollbackkit.serving.postgres.encode import outputs_texts
from rollbackkit.serving.postgres.reads import PgLogReads, row_filter
from rollbackkit.serving.postgres.schema import PG_ROW_COLUMNS, ROW_TABLES
from rollbackkit.serving.predlog.batches import primary_numbers
from rollbackkit.serving.predlog.schema import TABLES, quote
from rollbackkit.serving.predlog.surface import Rescore

LOGGER = logging.getLogger(__name__)

_COLUMNS = ", ".join(quote(name) for name in PG_ROW_COLUMNS)

_TODO_ORDER = 'inputs_table COLLATE "C", request_id COLLATE "C", "row"'
"""The DuckDB log's order of rows to backfill (text compared byte by byte)."""

_TODO_KEY = 'inputs_table COLLATE "C", request_id COLLATE "C", "row"'
"""The same order as a row value: a backfill pages by it."""

_AUDIT = 'request_id, "row", env, name, old_version, new_version, old_outputs, new_outputs, time'


class PgLogLifecycle(PgLogReads):
    """Promotion, quarantine, backfill and retention in the store (on top of the read side)."""

    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows (every replica's) to production in one transaction; later
        rows go there directly. A shadow deployment's rows never reach production (0)."""
        if self.stage_of(deployment) == "shadow":
            return 0
        self._settle()
        with self._tx(long=True) as con:
            con.execute("SELECT 1 FROM log_deployments WHERE deployment = %s FOR UPDATE", [deployment])
            moved = con.execute(
                "WITH m AS (DELETE FROM predictions_staging WHERE deployment = %s RETURNING *) "
                f"INSERT INTO predictions ({_COLUMNS}) SELECT {_COLUMNS} FROM m",
                [deployment],
            ).rowcount
            con.execute(
                "UPDATE log_deployments SET stage = 'production', updated = now() WHERE deployment = %s", [deployment]
            )
        return int(moved)

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark every row the version wrote in ``env`` quarantined (never deleted); rows of it still
        in flight on any replica are quarantined as they land.

        Returns:
            The version's rows now under quarantine (awaiting backfill).
        """
        self._settle()
        where, params = row_filter(name, env, version=version)
        try:
            return self._quarantine(name, env, version, where, params)
        except StoreError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":
                raise
            raise StoreError(
                f"The rows {name} {version} wrote in {env} were not quarantined: another transaction held "
                "the store's quarantine lock over 5 s (a replica's log batch stuck mid-commit?).",
                "Traffic has moved already; roll back again once pg_stat_activity shows no transaction "
                "of a 'rollbackkit log writer' older than a few seconds.",
            ) from exc

    def _quarantine(self, name: str, env: str, version: str, where: str, params: list[Any]) -> int:
        with self._tx(long=True) as con:
            con.execute("LOCK TABLE log_quarantine IN EXCLUSIVE MODE")
            con.execute(
                "INSERT INTO log_quarantine (name, env, version, since) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (name, env, version) DO UPDATE SET since = EXCLUDED.since",
                [name, env, version],
            )
            count = 0
            for table in TABLES:
                con.execute(f"UPDATE {table} SET status = 'quarantined' WHERE {where} AND status = 'ok'", params)
                found = con.execute(
                    f"SELECT count(*) FROM {table} WHERE {where} AND status = 'quarantined'", params
                ).fetchone()
                count += int(found[0]) if found else 0
        return count

    def backfill(
        self, name: str, env: str, version: str, rescore: Rescore, batch: int = 5000, primary: str | None = None
    ) -> dict[str, Any]:
        """Re-score every quarantined row of ``version`` (every replica's) and write corrected rows to
        production: the DuckDB log's answer (:meth:`~rollbackkit.serving.predlog.lifecycle.LogLifecycle.backfill`),
        ``{"rescored", "already_done", "failed"}`` (plus ``errors`` when rows failed; they stay
        quarantined). A second run rescores nothing."""
        self._settle()
        where, params = row_filter(name, env, version=version)
        with self._tx() as con:
            already = sum(
                int((con.execute(f"SELECT count(*) FROM {t} WHERE {where} AND status = 'backfilled'", params).fetchone()
                     or (0,))[0])
                for t in TABLES
            )  # fmt: skip
        rescored = failed = 0
        errors: list[str] = []
        after: list[Any] = []  # the last row done: the next page starts past it (keyset, never re-read)
        while True:
            past = f" AND ({_TODO_KEY}) > (%s, %s, %s)" if after else ""
            todo_sql = " UNION ALL ".join(
                f"(SELECT {_COLUMNS}, '{t}' AS src, ctid::text AS tid FROM {t} WHERE {where} "
                f"AND status = 'quarantined'{past} ORDER BY {_TODO_ORDER} LIMIT {int(batch)})"
                for t in TABLES
            )
            todo = self._frame(
                f"SELECT * FROM ({todo_sql}) q ORDER BY {_TODO_ORDER} LIMIT {int(batch)}",
                [*params, *after] * len(TABLES),
            )
            if todo.empty:
                break
            part = todo[todo["inputs_table"] == todo["inputs_table"].iloc[0]]
            last = part.iloc[-1]
            after = [last["inputs_table"], last["request_id"], int(last["row"])]
            try:
                rescored += self._backfill_batch(part, rescore, primary)
            except Exception as exc:  # a batch that cannot be re-scored stays quarantined, counted, and says why
                failed += len(part)
                reason = f"{len(part)} rows: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                LOGGER.warning("backfill of %s@%s in %s: %s", name, version, env, reason)
                errors.append(reason)
        done: dict[str, Any] = {"rescored": rescored, "already_done": already, "failed": failed}
        return {**done, "errors": errors[:5]} if failed else done

    def _backfill_batch(self, todo: pd.DataFrame, rescore: Rescore, primary: str | None) -> int:
        """Correct one batch of quarantined rows in one transaction; returns the rows corrected here
        (a row another run corrected meanwhile is left alone)."""
        outputs, new_version, bundle_id = rescore(self.inputs(todo))
        outputs = outputs.reset_index(drop=True)
        now, batch_id = datetime.now(UTC), uuid.uuid4().hex
        new_json = outputs_texts(outputs, len(todo))
        numbers = primary_numbers(outputs, primary).to_pylist()
        replica = getattr(self, "replica", None) or None
        originals = todo.reset_index(drop=True)
        with self._tx(long=True) as con, con.cursor() as cur:
            marked: set[tuple[str, int]] = set()
            for src, group in originals.groupby("src", sort=False):
                cur.execute(  # found by their tuple ids (a just-quarantined table has no statistics yet)
                    f"UPDATE {src} t SET status = 'backfilled' FROM unnest(%s::text[], %s::int[]) AS d(request_id, r) "
                    'WHERE t.ctid = ANY(%s::tid[]) AND t.request_id = d.request_id AND t."row" = d.r '
                    "AND t.replaces IS NULL AND t.status = 'quarantined' RETURNING t.request_id, t.\"row\"",
                    [group["request_id"].tolist(), group["row"].astype(int).tolist(), group["tid"].tolist()],
                )
                marked.update((str(r), int(n)) for r, n in cur.fetchall())
            keep = [(r, int(n)) in marked for r, n in zip(originals["request_id"], originals["row"], strict=True)]
            corrected, audit = [], []
            for k, row in enumerate(originals.itertuples(index=False)):
                if not keep[k]:
                    continue
                fields = row._asdict()
                values = {
                    **{c: fields.get(c) for c in PG_ROW_COLUMNS},
                    "time": now, "version": new_version, "bundle_id": bundle_id, "slot": "backfill",
                    "outputs": new_json[k], "primary_output": numbers[k], "latency_ms": None, "error": None,
                    "status": "backfill", "replaces": f"{fields['request_id']}:{int(fields['row'])}",
                    "batch_id": batch_id, "replica": replica,
                }  # fmt: skip
                corrected.append([_plain(values[c]) for c in PG_ROW_COLUMNS])
                audit.append(
                    [fields["request_id"], int(fields["row"]), fields["env"], fields["name"], fields["version"],
                     new_version, fields["outputs"], new_json[k], now]
                )  # fmt: skip
            with cur.copy(f"COPY predictions ({_COLUMNS}) FROM STDIN") as copy:
                for line in corrected:
                    copy.write_row(line)
            with cur.copy(f"COPY backfill_audit ({_AUDIT}) FROM STDIN") as copy:
                for line in audit:
                    copy.write_row(line)
            cur.execute(
                "INSERT INTO log_batches (batch_id, rows, written, replica) VALUES (%s, %s, %s, %s)",
                [batch_id, len(corrected), now, replica],
            )
        return len(corrected)

    def prune(self, days: float) -> int:
        """Drop rows older than ``days`` (every replica's), their labels and input blobs no row
        needs any more, the exactly-once ledger's batches older than that (and than an hour:
        no retry of them can still come) and the gate history as old; never a quarantined row
        awaiting its backfill."""
        if days < 0:
            raise InvalidInput(f"Cannot keep {days} days of predictions.", "Give a number of days >= 0.")
        cutoff = datetime.now(UTC) - timedelta(days=days)
        old = "time < %s AND status <> 'quarantined'"
        with self._tx(long=True) as con:
            count = sum(con.execute(f"DELETE FROM {t} WHERE {old}", [cutoff]).rowcount for t in ROW_TABLES)
            con.execute("DELETE FROM log_batches WHERE written < least(%s, now() - interval '1 hour')", [cutoff])
            con.execute("DELETE FROM gate_evaluations WHERE time < %s", [cutoff])  # the same retention
            kept = " UNION ALL ".join(f'SELECT request_id, "row" FROM {t}' for t in ROW_TABLES)
            con.execute(  # labels live as long as their rows
                f"DELETE FROM labels l WHERE NOT EXISTS (SELECT 1 FROM ({kept}) k "
                'WHERE k.request_id = l.request_id AND k."row" = l."row")'
            )
            used = " UNION ALL ".join(f"SELECT inputs_batch, inputs_table FROM {t}" for t in ROW_TABLES)
            con.execute(
                f"DELETE FROM log_inputs i WHERE NOT EXISTS (SELECT 1 FROM ({used}) u "
                "WHERE u.inputs_batch = i.batch_id AND u.inputs_table = i.signature)"
            )
        return int(count)


def _plain(value: Any) -> Any:
    """A pandas/numpy value as the plain Python value COPY writes (NaN and NA as null)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
