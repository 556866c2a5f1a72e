"""Downstream tables that keep the staging/production contract (the sink interface).

The prediction log (:mod:`rollbackkit.serving.predlog.log`) is the source of truth. A *sink* is a
user's own downstream table that mirrors it under the same contract:

- rows of a deployment under evaluation land in ``<table>_staging``;
- ``promote`` moves them to ``<table>`` in one transaction;
- consumers read the view ``<table>_production``, which never shows staged, quarantined
  or superseded rows;
- ``quarantine`` marks a bad version's rows (never deletes them) and ``backfill`` adds the
  corrected rows and marks the originals ``backfilled``.

Rows carry ``outputs`` (one JSON object per row, typed) and ``primary_output`` (a
numeric copy of a numeric or boolean primary output; null for a text class label).

Every write carries the log's batch id and is recorded in ``<table>_batches`` in the same
transaction, so replaying a batch is a no-op: after a crash the log re-sends what a sink
has not acknowledged (:meth:`PredictionLog.sync_sinks`) and nothing is written twice.

:class:`SqlSink` speaks to any database SQLAlchemy does (tested with SQLite). Configure
sinks in ``.rollbackkit/config.yaml``::

    sinks:
      - url: sqlite:////srv/scores.db
        table: churn_scores
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog.schema import SINK_COLUMNS

if TYPE_CHECKING:
    import sqlalchemy

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class Sink(Protocol):
    """What the prediction log needs from a downstream table."""

    def applied_batches(self) -> set[str]:
        """Batch ids this sink has already written (for replay after a crash)."""
        ...

    def write(self, staged: pd.DataFrame, production: pd.DataFrame, batch_id: str) -> None:
        """Write one log batch's rows (``SINK_COLUMNS``) to staging and production, once."""
        ...

    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows to production; returns the rows moved."""
        ...

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark a version's rows quarantined; returns the rows marked."""
        ...

    def backfill(self, corrected: pd.DataFrame, batch_id: str) -> None:
        """Add corrected rows and mark the rows they replace ``backfilled``, once."""
        ...


def validate_table(table: str) -> str:
    """A downstream table name: letters, digits and underscores, not starting with a digit."""
    if not _TABLE_RE.fullmatch(table):
        raise InvalidInput(
            f"Invalid sink table name {table!r}.", "Use letters, digits and underscores (at most 63 characters)."
        )
    return table


class SqlSink:
    """A downstream table in any SQLAlchemy database.

    Args:
        url: A SQLAlchemy URL, e.g. ``sqlite:////srv/scores.db``.
        table: The production table's name; ``<table>_staging``, ``<table>_production``
            (a view) and ``<table>_batches`` are created next to it.
    """

    def __init__(self, url: str, table: str) -> None:
        import sqlalchemy as sa

        self.url = url
        self.table = validate_table(table)
        try:
            self._engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise InvalidInput(f"Cannot use the sink URL {url!r}: {exc}.", "Give a SQLAlchemy database URL.") from exc
        self._meta = sa.MetaData()
        self._prod = self._define(table)
        self._staging = self._define(f"{table}_staging")
        self._batches = sa.Table(f"{table}_batches", self._meta, sa.Column("batch_id", sa.String, primary_key=True))
        try:
            with self._engine.begin() as con:
                self._meta.create_all(con)
                con.execute(
                    sa.text(
                        f"CREATE VIEW IF NOT EXISTS {table}_production AS SELECT * FROM {table} "
                        "WHERE status IN ('ok', 'backfill')"
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            raise InvalidInput(
                f"Cannot set up the sink table {table} at {url}: {str(exc).splitlines()[0]}.",
                "Check the URL and that the database accepts writes.",
            ) from exc

    def _define(self, name: str) -> sqlalchemy.Table:
        import sqlalchemy as sa

        types: dict[str, Any] = {
            "VARCHAR": sa.String,
            "INTEGER": sa.Integer,
            "TIMESTAMPTZ": sa.DateTime(timezone=True),
            "TEXT": sa.Text,
            "DOUBLE": sa.Float,
        }
        columns = []
        for column, sql_type in SINK_COLUMNS.items():
            kind, _, constraint = sql_type.partition(" ")
            columns.append(sa.Column(column, types[kind], nullable=constraint != "NOT NULL"))
        return sa.Table(
            name,
            self._meta,
            *columns,
            sa.Index(f"{name}_key", "request_id", "row"),
            sa.Index(f"{name}_deployment", "deployment"),
            sa.Index(f"{name}_version", "name", "env", "version"),
        )

    def applied_batches(self) -> set[str]:
        """Batch ids already written here."""
        with self._engine.connect() as con:
            return {row[0] for row in con.execute(self._batches.select())}

    def write(self, staged: pd.DataFrame, production: pd.DataFrame, batch_id: str) -> None:
        """Insert a batch's rows in one transaction, unless the batch was written before."""
        self._once(batch_id, [(self._staging, staged), (self._prod, production)])

    def backfill(self, corrected: pd.DataFrame, batch_id: str) -> None:
        """Insert corrected rows and mark the originals ``backfilled``, in one transaction."""
        import sqlalchemy as sa

        def mark(con: sa.Connection) -> None:
            keys = [
                {"k_request_id": request_id, "k_row": int(row)}
                for request_id, row in (key.rsplit(":", 1) for key in corrected["replaces"])
            ]
            for table in (self._prod, self._staging):
                con.execute(
                    table.update()
                    .where(table.c.request_id == sa.bindparam("k_request_id"), table.c.row == sa.bindparam("k_row"))
                    .where(table.c.replaces.is_(None), table.c.status == "quarantined")
                    .values(status="backfilled"),
                    keys,
                )

        self._once(batch_id, [(self._prod, corrected)], mark)

    def _once(self, batch_id: str, inserts: Iterable[tuple[Any, pd.DataFrame]], extra: Any = None) -> None:
        import sqlalchemy as sa

        with self._engine.begin() as con:
            seen = con.execute(sa.select(self._batches.c.batch_id).where(self._batches.c.batch_id == batch_id)).first()
            if seen is not None:
                return
            for table, frame in inserts:
                if len(frame):
                    con.execute(table.insert(), _records(frame))
            if extra is not None:
                extra(con)
            con.execute(self._batches.insert().values(batch_id=batch_id))

    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows to production in one transaction."""
        columns = ", ".join(f'"{c}"' for c in SINK_COLUMNS)
        import sqlalchemy as sa

        with self._engine.begin() as con:
            con.execute(
                sa.text(
                    f"INSERT INTO {self.table} ({columns}) SELECT {columns} FROM {self.table}_staging "
                    "WHERE deployment = :d"
                ),
                {"d": deployment},
            )
            moved = con.execute(self._staging.delete().where(self._staging.c.deployment == deployment)).rowcount
        return int(moved or 0)

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark a version's ``ok`` rows quarantined in both tables."""
        count = 0
        with self._engine.begin() as con:
            for table in (self._prod, self._staging):
                result = con.execute(
                    table.update()
                    .where(table.c.name == name, table.c.env == env, table.c.version == version)
                    .where(table.c.status == "ok")
                    .values(status="quarantined")
                )
                count += int(result.rowcount or 0)
        return count

    def read(self, view: str = "production") -> pd.DataFrame:
        """Read ``production`` (the view), ``staging``, or ``all`` production-table rows."""
        import sqlalchemy as sa

        name = {"production": f"{self.table}_production", "staging": f"{self.table}_staging", "all": self.table}[view]
        with self._engine.connect() as con:
            return pd.read_sql(sa.text(f"SELECT * FROM {name}"), con)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python records (no numpy scalars, NaN as None) for a DB-API driver."""
    part = frame[list(SINK_COLUMNS)].astype(object)
    part = part.where(pd.notna(part), None)
    records = part.to_dict(orient="records")
    for record in records:
        record["row"] = int(record["row"])
        if record["time"] is not None:
            record["time"] = pd.Timestamp(record["time"]).to_pydatetime()
    return records


def sinks_from_config(entries: list[dict[str, Any]] | None) -> list[Sink]:
    """Build the sinks listed under ``sinks:`` in the project config."""
    sinks: list[Sink] = []
    for i, entry in enumerate(entries or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry.get("table"):
            raise InvalidInput(
                f"Sink {i + 1} in .rollbackkit/config.yaml needs 'url' and 'table'.",
                "Write e.g. '- {url: sqlite:////srv/scores.db, table: churn_scores}'.",
            )
        sinks.append(SqlSink(entry["url"], str(entry["table"])))
    return sinks
