"""Any sample as a pandas Series: the inputs drift and gates accept, class labels, JSON values.

Inputs: numpy arrays, pandas Series/DataFrame columns, pyarrow arrays/tables, a Parquet
path (read through DuckDB, only the needed column), and Dask series (computed on their
cluster). Class labels (:func:`as_labels`) have one spelling per class whatever their
dtype: string, boolean or integer, ``1`` and ``1.0`` being one class.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput


def _is_dask(data: Any) -> bool:
    module = sys.modules.get("dask.dataframe")  # never import dask just to check
    return module is not None and isinstance(data, module.Series | module.DataFrame)


def as_series(data: Any, column: str | None = None) -> pd.Series:
    """Any supported input as a pandas Series (a Parquet path reads only ``column``)."""
    if isinstance(data, str | Path):
        return _read_parquet_column(Path(data), column)
    if _is_dask(data):
        data = data.compute()
    if isinstance(data, pd.DataFrame):
        data = _pick(data, column)
    if isinstance(data, pd.Series):
        return data.reset_index(drop=True)
    if type(data).__module__.startswith("pyarrow"):
        if hasattr(data, "column_names"):
            data = data.column(_need(column))
        return pd.Series(data.to_pandas())
    if isinstance(data, np.ndarray | list | tuple):
        return pd.Series(np.asarray(data))
    raise InvalidInput(
        f"Cannot compute drift on a {type(data).__name__}.",
        "Pass a numpy array, pandas Series/DataFrame, pyarrow array/table, Parquet path or Dask series.",
    )


def _need(column: str | None) -> str:
    if column is None:
        raise InvalidInput("A table was given without a column name.", "Pass column=... (--column).")
    return column


def _pick(frame: pd.DataFrame, column: str | None) -> pd.Series:
    name = _need(column)
    if name not in frame.columns:
        raise InvalidInput(
            f"Column {name!r} is not in the data.", f"Choose one of: {', '.join(map(str, frame.columns[:10]))}."
        )
    return frame[name]


def _read_parquet_column(path: Path, column: str | None) -> pd.Series:
    import duckdb

    if not path.is_file():
        raise InvalidInput(f"{path} does not exist.", "Pass an existing Parquet file.")
    name = _need(column)
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        result = duckdb.execute(f"SELECT {quoted} FROM read_parquet($path)", {"path": str(path)}).fetchnumpy()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"Cannot read column {name!r} of {path}: {str(exc).splitlines()[0]}.", "Check the path and the column name."
        ) from exc
    values = result[name]
    if isinstance(values, np.ma.MaskedArray):
        values = (
            np.ma.filled(values.astype("float64"), np.nan) if values.dtype.kind in "iuf" else np.ma.filled(values, None)
        )
    return pd.Series(values)


def is_numeric(series: pd.Series) -> bool:
    """True for numeric (not boolean) data."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def as_labels(data: Any, column: str | None = None) -> pd.Series:
    """Class labels as text, one spelling per class whatever the dtype they arrive in.

    ``True`` is ``"True"``, ``1``, ``1.0`` and ``"1"`` are ``"1"`` (an integer label read back
    as float after a missing value is the same class); missing values stay missing.
    """
    series = as_series(data, column)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = np.array([label_text(v) for v in uniques] + [None], dtype=object)
    return pd.Series(texts[codes], dtype=object)  # code -1 (missing) picks the trailing None


def label_text(value: Any) -> str:
    """A class label (or decision) as text, the one spelling: ``True``, ``1`` for ``1``/``1.0``/``"1"``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` with dicts, lists and tuples walked and each non-finite float made None (JSON null)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
