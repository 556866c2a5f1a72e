"""A logged version's life: staged, promoted, quarantined, backfilled, pruned.

Rows of a deployment under evaluation land in ``predictions_staging``; :meth:`promote`
moves them to ``predictions`` in one transaction. A rollback marks every row of the bad
version ``quarantined`` (never deleted); :meth:`backfill` re-scores their stored inputs
with the version now serving, writes corrected rows (status ``backfill``, ``replaces`` =
``request_id:row``) one transaction per batch, records old -> new in ``backfill_audit``
and marks the originals ``backfilled``. Sinks get each step under the same contract.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog.batches import primary_numbers
from rollbackkit.serving.predlog.queries import LogReader
from rollbackkit.serving.predlog.schema import (
    COLUMN_LIST,
    FIELDS,
    ROW_TABLES,
    SHADOW_TABLE,
    STAGES,
    TABLES,
    outputs_json,
    scalar,
    version_filter,
)
from rollbackkit.serving.predlog.surface import Rescore

LOGGER = logging.getLogger(__name__)


class LogLifecycle(LogReader):
    """Stages, promotion, quarantine, backfill and retention (on top of the read side)."""

    def set_stage(self, deployment: str, name: str, env: str, version: str, stage: str) -> None:
        """Declare where a deployment's rows go (``staging``, ``production`` or ``shadow``:
        ``predictions_shadow``, never production, sinks, quarantine or backfill).

        A fresh deployment of a version writes normal rows again, even if an earlier
        deployment of it was quarantined.
        """
        if stage not in STAGES:
            raise InvalidInput(f"Unknown log stage {stage!r}.", f"Use one of {', '.join(STAGES)}.")
        with self._tx() as con:
            con.execute(
                "INSERT OR REPLACE INTO log_deployments VALUES (?, ?, ?, ?, ?, ?)",
                [deployment, name, env, version, stage, datetime.now(UTC)],
            )
            con.execute("DELETE FROM log_quarantine WHERE name = ? AND env = ? AND version = ?", [name, env, version])
        self._stages[deployment] = stage
        self._quarantined.discard((name, env, version))

    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows to production atomically; later rows go there directly.

        A shadow deployment's rows never reach production: nothing moves (0) and its stage stays.
        """
        if self.stage_of(deployment) == "shadow":
            return 0
        self.flush()
        with self._tx() as con:
            moved = scalar(con, "SELECT count(*) FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute("INSERT INTO predictions SELECT * FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute("DELETE FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute(
                "UPDATE log_deployments SET stage = 'production', updated = ? WHERE deployment = ?",
                [datetime.now(UTC), deployment],
            )
        self._stages[deployment] = "production"
        self._to_sinks(lambda sink: sink.promote(deployment))
        return int(moved)

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark every row the version wrote in ``env`` quarantined (rows are never deleted).

        Rows of that version still in flight are quarantined as they land.

        Returns:
            The version's rows now under quarantine (awaiting backfill).
        """
        self._quarantined.add((name, env, version))
        self.flush()
        where = "name = ? AND env = ? AND version = ? AND replaces IS NULL"
        with self._tx() as con:
            con.execute(
                "INSERT OR REPLACE INTO log_quarantine VALUES (?, ?, ?, ?)", [name, env, version, datetime.now(UTC)]
            )
            count = 0
            for table in TABLES:
                con.execute(
                    f"UPDATE {table} SET status = 'quarantined' WHERE {where} AND status = 'ok'", [name, env, version]
                )
                count += scalar(
                    con, f"SELECT count(*) FROM {table} WHERE {where} AND status = 'quarantined'", [name, env, version]
                )
        self._to_sinks(lambda sink: sink.quarantine(name, env, version))
        return int(count)

    # ------------------------------------------------------------------------- reading
    def backfill(
        self, name: str, env: str, version: str, rescore: Rescore, batch: int = 5000, primary: str | None = None
    ) -> dict[str, Any]:
        """Re-score every quarantined row of ``version`` and write corrected rows to production.

        Args:
            name: Bundle name.
            env: Environment.
            version: The bad version whose rows are corrected.
            rescore: Scores a frame of the stored inputs; returns (outputs, version, bundle_id).
            batch: Rows per transaction.
            primary: The output column copied to ``primary_output`` (see
                :func:`primary_numbers`); None leaves it null.

        Returns:
            ``{"rescored", "already_done", "failed"}``, plus ``errors`` (why, for up to five
            failed batches) when rows failed: they stay quarantined. A second run rescores
            nothing.
        """
        self.flush()
        where, params = version_filter(name, env, version, None)
        with self._db:
            already = sum(
                scalar(self._con, f"SELECT count(*) FROM {t} WHERE {where} AND status = 'backfilled'", params)
                for t in TABLES
            )
        rescored = failed = 0
        failed_keys: set[tuple[str, int]] = set()
        errors: list[str] = []
        while True:
            with self._db:
                todo = self._con.execute(
                    f"SELECT {COLUMN_LIST}, 'predictions' AS src FROM predictions "
                    f"WHERE {where} AND status = 'quarantined' "
                    f"UNION ALL SELECT {COLUMN_LIST}, 'predictions_staging' AS src FROM predictions_staging "
                    f"WHERE {where} AND status = 'quarantined' ORDER BY inputs_table, request_id, \"row\"",
                    params + params,
                ).fetchdf()
            todo = todo[[(r, int(n)) not in failed_keys for r, n in zip(todo["request_id"], todo["row"], strict=True)]]
            if todo.empty:
                break
            part = todo[todo["inputs_table"] == todo["inputs_table"].iloc[0]].head(batch)
            try:
                self._backfill_batch(part, rescore, primary)
                rescored += len(part)
            except Exception as exc:  # a batch that cannot be re-scored stays quarantined, counted, and says why
                failed += len(part)
                failed_keys.update(zip(part["request_id"], part["row"].astype(int), strict=True))
                reason = f"{len(part)} rows: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                LOGGER.warning("backfill of %s@%s in %s: %s", name, version, env, reason)
                errors.append(reason)
        done: dict[str, Any] = {"rescored": rescored, "already_done": int(already), "failed": failed}
        return {**done, "errors": errors[:5]} if failed else done

    def _backfill_batch(self, todo: pd.DataFrame, rescore: Rescore, primary: str | None) -> None:
        outputs, new_version, bundle_id = rescore(self.inputs(todo))
        now = datetime.now(UTC)
        batch_id = uuid.uuid4().hex
        corrected = (  # the original rows, with the values a corrected row changes
            todo[FIELDS]
            .reset_index(drop=True)
            .assign(
                replaces=(todo["request_id"] + ":" + todo["row"].astype(str)).to_numpy(),
                version=new_version,
                bundle_id=bundle_id,
                status="backfill",
                time=now,
                batch_id=batch_id,
                slot="backfill",
                latency_ms=None,
                error=None,
            )
        )
        outputs = outputs.reset_index(drop=True)
        corrected["primary_output"] = primary_numbers(outputs, primary).to_pandas()
        new_json = self._json_rows(outputs)
        corrected["outputs"] = new_json
        audit = pd.DataFrame(
            {
                "request_id": todo["request_id"].to_numpy(),
                "row": todo["row"].to_numpy(),
                "env": todo["env"].to_numpy(),
                "name": todo["name"].to_numpy(),
                "old_version": todo["version"].to_numpy(),
                "new_version": new_version,
                "old_outputs": todo["outputs"].to_numpy(),
                "new_outputs": new_json,
                "time": now,
            }
        )
        keys = todo[["request_id", "row", "src"]].reset_index(drop=True)
        with self._tx() as con:
            con.register("corrected", corrected[FIELDS])
            con.register("audit_rows", audit)
            con.register("done_keys", keys)
            try:
                con.execute(f"INSERT INTO predictions ({COLUMN_LIST}) SELECT {COLUMN_LIST} FROM corrected")
                con.execute("INSERT INTO backfill_audit SELECT * FROM audit_rows")
                for table in TABLES:
                    con.execute(
                        f"UPDATE {table} SET status = 'backfilled' FROM done_keys d WHERE "
                        f'{table}.request_id = d.request_id AND {table}."row" = d."row" AND d.src = ? '
                        f"AND {table}.replaces IS NULL AND {table}.status = 'quarantined'",
                        [table],
                    )
                con.execute("INSERT INTO log_batches VALUES (?, ?, ?)", [batch_id, len(corrected), now])
            finally:
                for view in ("corrected", "audit_rows", "done_keys"):
                    con.unregister(view)
        self._to_sinks(lambda sink: self._replay(sink, batch_id))

    def _json_rows(self, outputs: pd.DataFrame) -> list[str]:
        """Outputs as one JSON object per row, doubles in shortest round-trip form."""
        if not outputs.shape[1]:
            return ["{}"] * len(outputs)
        frame = outputs.set_axis([f"o{k}" for k in range(outputs.shape[1])], axis=1)
        with self._db:
            self._con.register("json_frame", frame)
            try:
                query = f"SELECT {outputs_json([str(c) for c in outputs.columns])} AS j FROM json_frame"
                return [str(v) for v in self._con.execute(query).fetchnumpy()["j"]]
            finally:
                self._con.unregister("json_frame")

    def prune(self, days: float) -> int:
        """Drop rows older than ``days``, their inputs and the gate history as old (never a quarantined
        row awaiting backfill)."""
        if days < 0:
            raise InvalidInput(f"Cannot keep {days} days of predictions.", "Give a number of days >= 0.")
        cutoff = datetime.now(UTC).timestamp() - days * 86400
        old = "epoch(time) < ? AND status <> 'quarantined'"
        with self._tx() as con:
            count = sum(scalar(con, f"SELECT count(*) FROM {t} WHERE {old}", [cutoff]) for t in ROW_TABLES)
            for table in ROW_TABLES:
                con.execute(f"DELETE FROM {table} WHERE {old}", [cutoff])
            kept = " UNION ALL ".join(f'SELECT request_id, "row" FROM {t}' for t in ROW_TABLES)
            con.execute(  # labels live as long as their rows
                f"DELETE FROM labels l WHERE NOT EXISTS (SELECT 1 FROM ({kept}) k "
                'WHERE k.request_id = l.request_id AND k."row" = l."row")'
            )
            con.execute("DELETE FROM gate_evaluations WHERE epoch(time) < ?", [cutoff])  # the same retention
            for table in self._input_tables:
                con.execute(
                    f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE "
                    'p.request_id = t.request_id AND p."row" = t."row") AND NOT EXISTS (SELECT 1 FROM '
                    'predictions_staging s WHERE s.request_id = t.request_id AND s."row" = t."row") AND NOT EXISTS '
                    f'(SELECT 1 FROM {SHADOW_TABLE} w WHERE w.request_id = t.request_id AND w."row" = t."row")'
                )
        return int(count)
