"""Reading user data frames and the prefixed-column layout of reference/golden files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput, InvalidPath


def read_frame(data: Any, what: str = "data") -> pd.DataFrame:
    """A DataFrame as given, or read from a CSV / Parquet path."""
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise InvalidInput(f"The {what} is empty.", "Pass a frame with at least one row.")
        return data
    if not isinstance(data, str | Path):
        raise InvalidInput(
            f"The {what} must be a DataFrame or a file path, not {type(data).__name__}.",
            "Pass a pandas DataFrame, a .csv or a .parquet file.",
        )
    path = Path(data)
    if not path.is_file():
        raise InvalidPath(f"The {what} file {path} does not exist.", "Check the path.")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:
        raise InvalidInput(
            f"The {what} file {path} cannot be read: {exc}.", "Pass a readable .csv or .parquet file."
        ) from exc
    if frame.empty:
        raise InvalidInput(f"The {what} file {path} has no rows.", "Pass a file with data.")
    return frame


PARTS = ("output", "input", "label")
"""The parts of a reference profile, in the order :func:`parts` gives them precedence."""


def prefixed(prefix: str, column: str) -> str:
    """The stored name of ``column`` in part ``prefix`` of a reference or golden file: ``prefix:column``."""
    return f"{prefix}:{column}"


def with_prefix(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rename columns to ``prefix:column`` (reference and golden files keep parts apart)."""
    return frame.rename(columns=lambda c: prefixed(prefix, c)).reset_index(drop=True)


def part(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """The columns stored under ``prefix:``, with the prefix removed."""
    head = prefixed(prefix, "")
    cols = [c for c in frame.columns if str(c).startswith(head)]
    return frame[cols].rename(columns=lambda c: str(c)[len(head) :])


def parts(frame: pd.DataFrame, prefixes: tuple[str, ...] = PARTS) -> pd.DataFrame:
    """The columns of several parts side by side, prefixes removed.

    A name stored in two parts (a feature named like an output) is taken once, from the
    part named first, so every column of the result is one series.
    """
    taken: dict[str, Any] = {}
    for prefix in prefixes:
        head = prefixed(prefix, "")
        for column in frame.columns:
            name = str(column)
            if name.startswith(head):
                taken.setdefault(name[len(head) :], column)
    return frame[list(taken.values())].set_axis(list(taken), axis=1)


def read_features(source: str | Path) -> pd.DataFrame:
    """Live features from a CSV/Parquet path, or from stdin when ``source`` is ``-``.

    Stdin may hold CSV, JSON records (``[{...}, ...]`` or ``{"records": [...]}``) or pandas'
    split orient (``{"columns": [...], "data": [[...], ...]}``).

    Args:
        source: A ``.csv`` or ``.parquet`` path, or ``-`` for stdin.

    Returns:
        The features as a ``pandas.DataFrame`` with at least one row.

    Raises:
        InvalidPath: The file does not exist.
        InvalidInput: Nothing arrived on stdin, or the data cannot be read, or it has no rows.
    """
    if str(source) != "-":
        return read_frame(Path(source), "live features")
    import io
    import json
    import sys

    text = sys.stdin.read()
    if not text.strip():
        raise InvalidInput("No features arrived on stdin.", "Pipe a CSV or JSON file in, or pass --features PATH.")
    try:
        if text.lstrip()[:1] in "[{":
            data = json.loads(text)
            if isinstance(data, dict) and "records" in data:
                data = data["records"]
            frame = (
                pd.DataFrame(data["data"], columns=data["columns"])
                if isinstance(data, dict)
                else pd.DataFrame.from_records(data)
            )
        else:
            frame = pd.read_csv(io.StringIO(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"The features on stdin cannot be read: {exc}.",
            'Send CSV, JSON records, or {"columns": [...], "data": [...]}.',
        ) from exc
    return read_frame(frame, "live features")
