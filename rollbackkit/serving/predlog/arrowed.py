"""A request's frame as an Arrow table, every dtype exact and without a pandas warning.

Both logs store inputs through :func:`frame_table`: the DuckDB writer's batches
(:mod:`rollbackkit.serving.predlog.batches`) and the PostgreSQL store's input blobs
(:mod:`rollbackkit.serving.postgres.encode`).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa


def frame_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` (unique string column names) as Arrow, with pandas' metadata for ``to_pandas``.

    A tz-aware datetime column becomes a ``timestamp[unit, tz]`` of its UTC instants, built
    here: ``pa.Table.from_pandas`` reads it through ``Series.values``, which pandas 3.1
    deprecates (a ``Pandas4Warning``, an error under ``python -W error``). An object column
    Arrow cannot type (mixed values) goes as text.
    """
    aware = {k: frame.iloc[:, k] for k, dtype in enumerate(frame.dtypes) if isinstance(dtype, pd.DatetimeTZDtype)}
    plain = frame.copy(deep=False) if aware else frame
    for k, column in aware.items():  # UTC wall times stand in: same length, same metadata slot
        plain.isetitem(k, column.dt.tz_convert(None))
    try:
        table = pa.Table.from_pandas(plain, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):  # 2**64 + 1 too
        mixed = plain.select_dtypes(include="object").columns
        table = pa.Table.from_pandas(plain.astype(dict.fromkeys(mixed, "str")), preserve_index=False)
    for k, column in aware.items():
        dtype = column.dtype
        kind = pa.timestamp(dtype.unit, tz=pa.lib.tzinfo_to_string(dtype.tz))
        values = pa.array(column.dt.tz_convert(None).to_numpy(), type=kind, from_pandas=True)  # NaT: null
        table = table.set_column(k, pa.field(table.field(k).name, kind), values)
    return table
