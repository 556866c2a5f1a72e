"""The DuckDB log's gate history: the watchdog's evaluations, thinned as they are stored.

See :mod:`rollbackkit.serving.gate_history` for what is recorded and how runs are thinned.
"""

from __future__ import annotations

from datetime import datetime

from rollbackkit.serving.gate_history import FIELDS, GateEvaluation, Newest, placement, row_of
from rollbackkit.serving.predlog.database import LogDatabase
from rollbackkit.serving.predlog.schema import quote

HISTORY_LIMIT = 100_000
"""The most records one read returns (the newest ones)."""

_NEWEST = (
    "SELECT signature, first, run_start, evaluations, run_evaluations FROM gate_evaluations "
    "WHERE name = ? AND env = ? ORDER BY time DESC LIMIT 1"
)


class LogGates(LogDatabase):
    """``record_gates`` and ``gate_history`` over the log file."""

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        """Store one watchdog evaluation of NAME/ENV (a new row, or merged into the newest: thinning)."""
        with self._tx() as con:
            found = con.execute(_NEWEST, [name, env]).fetchone()
            newest = Newest(found[0], found[1], found[2], found[3], found[4]) if found else None
            where, run_start, run = placement(newest, evaluation)
            if where == "merge":
                con.execute(
                    "UPDATE gate_evaluations SET time = ?, evaluations = evaluations + 1, run_evaluations = ?, "
                    "n = ?, gates = ?, error = ? WHERE name = ? AND env = ? AND first = ? AND run_start = ?",
                    [evaluation.time, run, evaluation.n, evaluation.gates_json(), evaluation.error, name, env,
                     newest.first if newest else None, run_start],
                )  # fmt: skip
                return
            row = row_of(name, env, evaluation, run_start, run)
            listed = ", ".join(quote(f) for f in FIELDS)
            con.execute(
                f"INSERT INTO gate_evaluations ({listed}) VALUES ({', '.join('?' * len(FIELDS))})",
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
