"""The DuckDB log's gate history: the watchdog's evaluations, thinned as they are stored.

See :mod:`rollbackkit.serving.gate_history` for what is recorded and how runs are thinned.
"""

from __future__ import annotations

from datetime import datetime

from rollbackkit.serving.gate_history import HISTORY_LIMIT, GateEvaluation
from rollbackkit.serving.gate_rows import store
from rollbackkit.serving.predlog.database import LogDatabase


class LogGates(LogDatabase):
    """``record_gates`` and ``gate_history`` over the log file."""

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        """Store one watchdog evaluation of NAME/ENV (a new row, or merged into the newest: thinning)."""
        with self._tx() as con:
            store(con, name, env, evaluation)

    def gate_history(
        self,
        name: str,
        env: str,
        since: datetime | None = None,
        until: datetime | None = None,
        version: str | None = None,
    ) -> list[GateEvaluation]:
        """The recorded evaluations of NAME/ENV, oldest first (at most :data:`HISTORY_LIMIT`, the newest)."""
        where, params = history_filter(name, env, since, until, version)
        with self._db:
            frame = self._con.execute(
                f"SELECT * FROM (SELECT * FROM gate_evaluations WHERE {where} ORDER BY time DESC LIMIT "
                f"{HISTORY_LIMIT}) ORDER BY time",
                params,
            ).fetchdf()
        return [GateEvaluation.from_dict(r) for r in frame.to_dict("records")]


def history_filter(
    name: str, env: str, since: datetime | None, until: datetime | None, version: str | None, mark: str = "?"
) -> tuple[str, list[object]]:
    """A WHERE clause over ``gate_evaluations`` and its parameters (``mark``: the driver's placeholder)."""
    where, params = f"name = {mark} AND env = {mark}", list[object]([name, env])
    if since is not None:
        where += f" AND time >= {mark}"
        params.append(since)
    if until is not None:
        where += f" AND first <= {mark}"
        params.append(until)
    if version is not None:
        where += f" AND version = {mark}"
        params.append(version)
    return where, params
