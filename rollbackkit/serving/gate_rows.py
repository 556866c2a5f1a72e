"""How a watchdog evaluation is stored: a new row, or merged into the newest (thinning).

The one home of the rule (:func:`placement`, :func:`fold`) and of its SQL (:func:`store`),
for the DuckDB log and the shared store alike (only the driver's placeholder differs).

A *run* is a sequence of evaluations with the same signature (deployment, version, role,
decision and each gate's status and failure streak). Every change of signature opens a new
row, and a run's first evaluation keeps its own row; later evaluations of the run are merged
into the newest row (its values become the latest, each gate keeps the ``low``/``high`` of
the values merged, ``evaluations`` counts them) until it holds ``max(MERGE, run / RUN_POINTS)``
evaluations. A gap of more than :data:`GAP` times the run's usual interval (the server was
down, the watchdog paused) opens a new run: a row never spans downtime.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from rollbackkit.serving.gate_history import FIELDS, GateEvaluation

MERGE = 10
"""Evaluations a row of a run absorbs at least before the next row opens."""

RUN_POINTS = 50
"""A long run keeps about this many rows per factor e of its length (logarithmic growth)."""

GAP = 3.0
"""A pause longer than this many of the run's usual intervals opens a new run (a new row)."""

Placement = Literal["insert", "merge"]


def quote(column: str) -> str:
    """A column name quoted for SQL (``first``, ``time`` are keywords somewhere)."""
    return f'"{column}"'


_MERGED = ("time", "evaluations", "run_evaluations", "n", "gates", "error")
"""The columns a merge rewrites."""


def placement(newest: dict[str, Any] | None, evaluation: GateEvaluation) -> tuple[Placement, datetime, int]:
    """Whether ``evaluation`` opens a row or is merged into ``newest`` (a stored row); its run's start and count."""
    if newest is None or newest["signature"] != evaluation.signature or _after_gap(newest, evaluation.time):
        return "insert", evaluation.time, 1
    run = int(newest["run_evaluations"]) + 1
    if newest["first"] == newest["run_start"] or newest["evaluations"] >= max(MERGE, run // RUN_POINTS):
        return "insert", newest["run_start"], run
    return "merge", newest["run_start"], run


def _after_gap(newest: dict[str, Any], at: datetime) -> bool:
    """Whether ``at`` comes more than :data:`GAP` usual intervals after the newest row's run."""
    seen = int(newest["run_evaluations"])
    if seen < 2:
        return False
    usual = max((newest["time"] - newest["run_start"]) / (seen - 1), timedelta(seconds=1))
    return bool(at - newest["time"] > GAP * usual)


def fold(
    newest: dict[str, Any] | None, name: str, env: str, evaluation: GateEvaluation
) -> tuple[Placement, dict[str, Any]]:
    """The row ``evaluation`` becomes: a new one (``insert``) or ``newest`` with it merged in (``merge``)."""
    where, run_start, run = placement(newest, evaluation)
    if where == "merge" and newest is not None:
        merged = {"time": evaluation.time, "evaluations": int(newest["evaluations"]) + 1, "run_evaluations": run}
        merged |= {"n": evaluation.n, "gates": _widened(newest["gates"], evaluation), "error": evaluation.error}
        return "merge", {**newest, **merged}
    row = {"name": name, "env": env, "first": evaluation.time, "run_start": run_start, "evaluations": 1}
    row |= {"run_evaluations": run, "signature": evaluation.signature, "gates": evaluation.gates_json()}
    said = {k: getattr(evaluation, k) for k in ("time", "deployment", "version", "role", "decision", "n", "error")}
    return "insert", {**row, **said}


def _widened(stored: str, evaluation: GateEvaluation) -> str:
    """``evaluation``'s gates (the latest values), each with the lowest and highest value merged so far."""
    before = {g.get("name"): g for g in json.loads(stored or "[]")}
    said = json.loads(evaluation.gates_json())
    for gate in said:
        old = before.get(gate["name"], {})
        values = [v for v in (old.get("low"), old.get("high"), old.get("value"), gate["value"]) if v is not None]
        gate["low"], gate["high"] = (min(values), max(values)) if values else (None, None)
    return json.dumps(said)


def store(con: Any, name: str, env: str, evaluation: GateEvaluation, mark: str = "?", lock: str = "") -> None:
    """Store ``evaluation`` in ``gate_evaluations`` over ``con`` (inside the caller's transaction).

    ``mark`` is the driver's placeholder (DuckDB ``?``, psycopg ``%s``); ``lock`` ends the
    newest row's SELECT (``FOR UPDATE`` on PostgreSQL).
    """
    listed = ", ".join(quote(f) for f in FIELDS)
    found = con.execute(
        f"SELECT {listed} FROM gate_evaluations WHERE name = {mark} AND env = {mark} ORDER BY time DESC LIMIT 1{lock}",
        [name, env],
    ).fetchone()
    where, row = fold(dict(zip(FIELDS, found, strict=True)) if found else None, name, env, evaluation)
    if where == "merge":
        sets = ", ".join(f"{quote(f)} = {mark}" for f in _MERGED)
        keys = " AND ".join(f"{quote(f)} = {mark}" for f in ("name", "env", "first", "run_start"))
        params = [row[f] for f in (*_MERGED, "name", "env", "first", "run_start")]
        con.execute(f"UPDATE gate_evaluations SET {sets} WHERE {keys}", params)
        return
    con.execute(
        f"INSERT INTO gate_evaluations ({listed}) VALUES ({', '.join([mark] * len(FIELDS))})", [row[f] for f in FIELDS]
    )
