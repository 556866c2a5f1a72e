"""The shared store's gate history: the leader's watchdog evaluations, thinned as they are stored.

The table ``gate_evaluations`` (:mod:`.schema`: created where missing, the schema stays 2, so
replicas on either side of an upgrade share the store) holds what the DuckDB log's does
(:mod:`rollbackkit.serving.predlog.gatelog`); every replica reads it, only the leader writes.
A store no new replica has migrated yet has no such table: its history reads as empty.
"""

from __future__ import annotations

from datetime import datetime

from rollbackkit.serving.gate_history import GateEvaluation
from rollbackkit.serving.gate_rows import store
from rollbackkit.serving.postgres.logbase import PgLogBase
from rollbackkit.serving.predlog.gatelog import HISTORY_LIMIT, history_filter


class PgLogGates(PgLogBase):
    """``record_gates`` and ``gate_history`` over the shared store."""

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        """Store one watchdog evaluation of NAME/ENV (a new row, or merged into the newest: thinning)."""
        with self._tx() as con:
            store(con, name, env, evaluation, mark="%s", lock=" FOR UPDATE")

    def gate_history(
        self,
        name: str,
        env: str,
        since: datetime | None = None,
        until: datetime | None = None,
        version: str | None = None,
    ) -> list[GateEvaluation]:
        """The recorded evaluations of NAME/ENV, oldest first (at most :data:`HISTORY_LIMIT`, the newest)."""
        where, params = history_filter(name, env, since, until, version, mark="%s")
        if self._frame("SELECT to_regclass('gate_evaluations') IS NULL AS missing")["missing"].iloc[0]:
            return []  # a store only older replicas have opened: nothing recorded yet
        frame = self._frame(
            f"SELECT * FROM (SELECT * FROM gate_evaluations WHERE {where} ORDER BY time DESC LIMIT "
            f"{HISTORY_LIMIT}) AS newest ORDER BY time",
            params,
        )
        return [GateEvaluation.from_dict(r) for r in frame.to_dict("records")]
