"""The shared store's gate history: the leader's watchdog evaluations, thinned as they are stored.

The table ``gate_evaluations`` (schema 3, :mod:`.schema`) holds what the DuckDB log's does
(:mod:`rollbackkit.serving.predlog.gatelog`); every replica reads it, only the leader writes.
"""

from __future__ import annotations

from datetime import datetime

from rollbackkit.serving.gate_history import FIELDS, GateEvaluation, Newest, placement, row_of
from rollbackkit.serving.postgres.logbase import PgLogBase
from rollbackkit.serving.predlog.gatelog import HISTORY_LIMIT, history_filter
from rollbackkit.serving.predlog.schema import quote

_NEWEST = (
    "SELECT signature, first, run_start, evaluations, run_evaluations FROM gate_evaluations "
    "WHERE name = %s AND env = %s ORDER BY time DESC LIMIT 1 FOR UPDATE"
)


class PgLogGates(PgLogBase):
    """``record_gates`` and ``gate_history`` over the shared store."""

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        """Store one watchdog evaluation of NAME/ENV (a new row, or merged into the newest: thinning)."""
        with self._tx() as con:
            found = con.execute(_NEWEST, (name, env)).fetchone()
            newest = Newest(found[0], found[1], found[2], found[3], found[4]) if found else None
            where, run_start, run = placement(newest, evaluation)
            if where == "merge" and newest is not None:
                con.execute(
                    "UPDATE gate_evaluations SET time = %s, evaluations = evaluations + 1, run_evaluations = %s, "
                    "n = %s, gates = %s, error = %s WHERE name = %s AND env = %s AND first = %s AND run_start = %s",
                    (evaluation.time, run, evaluation.n, evaluation.gates_json(), evaluation.error, name, env,
                     newest.first, run_start),
                )  # fmt: skip
                return
            row = row_of(name, env, evaluation, run_start, run)
            listed = ", ".join(quote(f) for f in FIELDS)
            con.execute(
                f"INSERT INTO gate_evaluations ({listed}) VALUES ({', '.join(['%s'] * len(FIELDS))})",
                [row[f] for f in FIELDS],
            )

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
        frame = self._frame(
            f"SELECT * FROM (SELECT * FROM gate_evaluations WHERE {where} ORDER BY time DESC LIMIT "
            f"{HISTORY_LIMIT}) AS newest ORDER BY time",
            params,
        )
        return [GateEvaluation.from_dict(r) for r in frame.to_dict("records")]
