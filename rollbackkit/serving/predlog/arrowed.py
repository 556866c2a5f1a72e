"""A request's frame as an Arrow table, every dtype exact and without a pandas warning.

Both logs store inputs through :func:`frame_table`: the DuckDB writer's batches
(:mod:`rollbackkit.serving.predlog.batches`) and the PostgreSQL store's input blobs
(:mod:`rollbackkit.serving.postgres.encode`).
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa


def frame_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` (unique string column names) as Arrow, with pandas' metadata for ``to_pandas``.

    A tz-aware datetime column becomes a ``timestamp[unit, tz]`` of its UTC instants, and a
    categorical one whose categories are tz-aware a dictionary of them, built here:
    ``pa.Table.from_pandas`` reads them through ``.values``, which pandas 3.1 deprecates (a
    ``Pandas4Warning``, an error under ``python -W error``). pandas' metadata describes them as
    tz-aware. An object column Arrow cannot type (mixed values) goes as text.
    """
    aware = {k: frame.iloc[:, k] for k, dtype in enumerate(frame.dtypes) if _zone(dtype) is not None}
    plain = frame.copy(deep=False) if aware else frame
    for k, column in aware.items():  # UTC wall times stand in: same length, same metadata slot
        plain.isetitem(k, _naive(column))
    try:
        table = pa.Table.from_pandas(plain, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):  # 2**64 + 1 too
        mixed = plain.select_dtypes(include="object").columns
        table = pa.Table.from_pandas(plain.astype(dict.fromkeys(mixed, "str")), preserve_index=False)
    for k, column in aware.items():
        values = _aware_array(column)
        table = table.set_column(k, pa.field(table.field(k).name, values.type), values)
    return _described_aware(table, list(aware))


def _zone(dtype: object) -> object | None:
    """The time zone of a tz-aware dtype, or of a categorical's tz-aware categories; else None."""
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return dtype.tz if isinstance(dtype, pd.DatetimeTZDtype) else None


def _naive(column: pd.Series) -> pd.Series:
    """``column``'s UTC wall times (a categorical keeps its codes over its categories' wall times)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories.tz_convert(None)
        return pd.Series(pd.Categorical.from_codes(column.cat.codes, categories, ordered=column.cat.ordered))
    return column.dt.tz_convert(None)


def _aware_array(column: pd.Series) -> pa.Array:
    """``column`` as Arrow: its UTC instants typed ``timestamp[unit, tz]`` (NaT: null), or a dictionary of them."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        indices = pa.array(codes, mask=codes < 0)
        return pa.DictionaryArray.from_arrays(indices, _aware_array(pd.Series(dtype.categories)), ordered=dtype.ordered)
    kind = pa.timestamp(dtype.unit, tz=pa.lib.tzinfo_to_string(dtype.tz))
    return pa.array(column.dt.tz_convert(None).to_numpy(), type=kind, from_pandas=True)


def _described_aware(table: pa.Table, aware: list[int]) -> pa.Table:
    """``table`` with pandas' metadata of the tz-aware timestamp columns ``aware`` naming their zone.

    The entries were built from the UTC wall times (``datetime``, no zone); a categorical's
    entry describes its codes and stays.
    """
    metadata = dict(table.schema.metadata or {})
    pandas = json.loads(metadata.get(b"pandas", b"null"))
    zoned = [k for k in aware if pa.types.is_timestamp(table.field(k).type)]
    if not zoned or pandas is None:
        return table
    for k in zoned:
        pandas["columns"][k].update(pandas_type="datetimetz", metadata={"timezone": table.field(k).type.tz})
    metadata[b"pandas"] = json.dumps(pandas).encode()
    return table.replace_schema_metadata(metadata)
