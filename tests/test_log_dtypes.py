"""Every dtype a request can carry is logged without a warning and read back as it was scored.

A request's inputs hold tz-aware and naive datetimes, pandas' nullable ``Int64``, ``boolean``,
``string`` and ``category``, NaN, None and ``pd.NA``, bools, integers at the ends of int64 and
unicode text. Both logs (the DuckDB file and the PostgreSQL store) write them with every
warning an error (pandas 4's ``Series.values`` deprecation used to fail the DuckDB write of a
tz-aware column under ``python -W error``, counted as a lost request), and give the same values
back through the readers the panels use (a gate window, the scored inputs a backfill re-scores).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.arrowed import frame_table
from rollbackkit.serving.predlog.log import PredictionLog
from tests.postgres import PgCluster

ENV = "prod"
START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Paris skips an hour
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu"]
INT64 = st.integers(-(2**63), 2**63 - 1)
MOMENTS = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC))


def _column(kind: str, values: list[Any], zone: str) -> pd.Series:
    """One input column of ``kind`` holding ``values`` (None: that kind's missing value)."""
    if kind == "float":
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    if kind == "int64":
        return pd.Series(values, dtype="int64")
    if kind == "bool":
        return pd.Series(values, dtype=bool)
    if kind == "object":
        return pd.Series(values, dtype=object)
    if kind == "naive":
        return pd.Series([None if v is None else v.replace(tzinfo=None) for v in values], dtype="datetime64[us]")
    if kind == "aware":
        return pd.Series(values, dtype="datetime64[us, UTC]").dt.tz_convert(zone)
    if kind == "category":
        return pd.Series(pd.Categorical(values))
    if kind == "aware category":
        return pd.Series(pd.Categorical(_column("aware", values, zone)))
    return pd.Series([pd.NA if v is None else v for v in values], dtype=kind)


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


KINDS: dict[str, st.SearchStrategy[Any]] = {
    "float": _maybe(st.floats(allow_nan=False, width=64)),
    "int64": INT64,
    "bool": st.booleans(),
    "object": _maybe(st.text(max_size=5)),
    "naive": _maybe(MOMENTS),
    "aware": _maybe(MOMENTS),
    "Int64": _maybe(INT64),
    "boolean": _maybe(st.booleans()),
    "string": _maybe(st.text(max_size=5)),
    "category": _maybe(st.sampled_from(["ç", "日本", "a b", '"q"'])),
    "aware category": _maybe(MOMENTS),
}


@st.composite
def requests(draw: st.DrawFn) -> pd.DataFrame:
    """One request's inputs: one to five columns of any kind, one to four rows."""
    kinds = draw(st.lists(st.sampled_from(list(KINDS)), min_size=1, max_size=5))
    rows = draw(st.integers(1, 4))
    tag = uuid.uuid4().hex[:6]  # a signature of its own: an inputs table is typed by its first rows
    return pd.DataFrame(
        {
            f"{kind}_{k}_{tag}": _column(
                kind, draw(st.lists(KINDS[kind], min_size=rows, max_size=rows)), draw(st.sampled_from(ZONES))
            )
            for k, kind in enumerate(kinds)
        }
    )


EVERY_KIND = pd.DataFrame(
    {
        "paris": _column("aware", [START, None, START + timedelta(microseconds=7)], "Europe/Paris"),
        "naive": _column("naive", [START, START + timedelta(days=1), None], ""),
        "visits": pd.array([2**63 - 1, None, -(2**63)], dtype="Int64"),
        "member": pd.array([True, None, False], dtype="boolean"),
        "city": pd.array(["Zürich", pd.NA, "東京"], dtype="string"),
        "plan": pd.Categorical(["gold", None, "gold"]),
        "note": ["ça", None, "😀"],
        "income": [1.5, np.nan, -0.0],
        "big": np.array([2**62, -(2**63), 2**63 - 1], dtype="int64"),
        "flag": [True, False, True],
    }
)
"""Three rows with one column of every kind a panel reads."""


@pytest.fixture(scope="module")
def logs(postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A DuckDB log and a store log, written with every warning an error."""
    database = postgres.create_database(f"rk_dtypes_{uuid.uuid4().hex[:8]}")
    opened = {
        "duckdb": PredictionLog(tmp_path_factory.mktemp("dtypes") / "predictions.duckdb"),
        "postgres": PostgresLog(open_store(database), flush_interval=0.05),
    }
    for log in opened.values():
        log.start()
    yield opened
    for log in opened.values():
        log.close()


def log_request(log: Any, name: str, inputs: pd.DataFrame) -> None:
    """Log one request of ``inputs`` (scored ``p``) with warnings as errors, and commit it."""
    meta = {
        "request_id": f"r-{name}", "time": START, "env": ENV, "name": name, "version": "v1", "bundle_id": "b",
        "slot": "live", "deployment": f"{name}@v1", "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
    }  # fmt: skip
    before = log.status()["unwritten"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log.record(meta, inputs, pd.DataFrame({"p": np.linspace(0, 1, len(inputs))}))
        log.flush()
    assert log.status()["unwritten"] == before, log.status()["last_write_error"]


def plain(values: pd.Series) -> list[Any]:
    """Values as plain Python objects (a datetime as its instant), every missing value None."""
    return [None if v is None or v is pd.NA or v is pd.NaT or v != v else v for v in values.astype(object)]


WINDOW_DTYPES = {"Int64": ("Int64", "int64"), "boolean": ("boolean", "bool"), "int64": ("int64",), "bool": ("bool",)}
"""What a gate window gives for a nullable dtype: itself, or numpy's where no value is missing."""


def assert_same_values(read: pd.DataFrame, inputs: pd.DataFrame) -> None:
    """``read`` (a gate window) holds ``inputs``' values, numbers and datetimes in their dtypes."""
    for column in inputs.columns:
        assert plain(read[column]) == plain(inputs[column]), column
        scored, got = inputs[column].dtype, read[column].dtype
        if isinstance(scored, pd.DatetimeTZDtype):  # an instant, told in UTC
            assert isinstance(got, pd.DatetimeTZDtype) and got.unit == scored.unit, (column, got)
        elif scored.kind in "Mf":
            assert got == scored, (column, got)
        elif str(scored) in WINDOW_DTYPES:
            assert str(got) in WINDOW_DTYPES[str(scored)], (column, got)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_every_kind_is_logged_without_a_warning_and_read_back(logs: dict[str, Any], backend: str) -> None:
    log, name = logs[backend], f"kinds-{uuid.uuid4().hex[:6]}"
    log_request(log, name, EVERY_KIND)
    window = log.window(name, ENV, version="v1")
    assert_same_values(window, EVERY_KIND)
    assert window["paris"].iloc[2] == pd.Timestamp("2026-03-29 00:30:00.000007", tz="UTC")
    assert window["visits"].iloc[0] == 2**63 - 1 and window["city"].iloc[2] == "東京"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=requests())
def test_any_request_round_trips_through_both_logs(logs: dict[str, Any], inputs: pd.DataFrame) -> None:
    name = f"any-{uuid.uuid4().hex[:6]}"
    windows = []
    for log in logs.values():
        log_request(log, name, inputs)
        windows.append(log.window(name, ENV, version="v1"))
        assert_same_values(windows[-1], inputs)
    pd.testing.assert_frame_equal(windows[0], windows[1])
    pd.testing.assert_frame_equal(logs["postgres"].recent_inputs(name, ENV), inputs)  # the dtypes scored


def test_a_request_the_log_cannot_store_is_still_counted(logs: dict[str, Any]) -> None:
    """The guard above is live: an unstorable input (complex numbers) is a counted write error."""
    log = logs["duckdb"]
    before = log.status()["unwritten"]
    with pytest.raises(AssertionError):
        log_request(log, f"bad-{uuid.uuid4().hex[:6]}", pd.DataFrame({"z": [1 + 2j]}))
    assert log.status()["unwritten"] == before + 1


def test_a_category_of_tz_aware_moments_is_logged_without_a_warning(logs: dict[str, Any]) -> None:
    """Shift starts as a category (told in Paris): both logs store it, the DuckDB window gives the instants."""
    starts = _column("aware", [START, None, START + timedelta(hours=2)], "Europe/Paris")
    inputs = pd.DataFrame({"shift": pd.Categorical(starts), "paris": starts})
    name = f"tzcat-{uuid.uuid4().hex[:6]}"
    for log in logs.values():
        log_request(log, name, inputs)  # pyarrow read the categories through DatetimeIndex.values: a failed write
    window = logs["duckdb"].window(name, ENV, version="v1")
    assert plain(window["shift"]) == plain(inputs["shift"]) == plain(starts)
    read = logs["postgres"].recent_inputs(name, ENV)  # pyarrow gave the categories back naive: a TypeError
    pd.testing.assert_frame_equal(read, inputs)
    table = frame_table(inputs)
    assert table.schema.field("shift").type == pa.dictionary(pa.int8(), pa.timestamp("us", tz="Europe/Paris"))
    described = {c["name"]: c for c in table.schema.pandas_metadata["columns"]}
    assert described["paris"]["pandas_type"] == "datetimetz"
    assert described["paris"]["metadata"] == {"timezone": "Europe/Paris"}
