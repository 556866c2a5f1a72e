"""Ground-truth labels read as the values a version predicts (pure: no I/O).

A label arrives as text (a CSV cell), a JSON value or a typed Parquet value; it is stored as
the type the version's ``prediction`` has, so a window compares like with like: for a
classifier, one of the version's classes (``"1"`` is the integer class ``1``, ``"true"`` the
boolean class ``True``, text stays text); for a regressor, a finite number (a float).
Surrounding whitespace is ignored for every kind (``" 2"`` is ``2``, ``" setosa"`` is
``"setosa"``) unless a class is itself spelled with it.

A missing label (None, NaN, NA, an empty cell) is no label: it comes back None and the
caller skips it (the ingest counts it as ``missing``). Anything else that does not fit is
refused: :class:`~rollbackkit.errors.InvalidInput` names the first bad row, its value and what
the version expects, and nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.schema import OutputContract
from rollbackkit.errors import InvalidInput

_TRUE = frozenset({"true", "1", "1.0"})
_FALSE = frozenset({"false", "0", "0.0"})


def coerce_labels(values: pd.Series, output: OutputContract, where: str, *, owner: str = "the version") -> pd.Series:
    """``values`` as the version's label type (object Series, same index; None: no label).

    Args:
        values: The labels as given (text, JSON values or typed values).
        output: The output contract of the version the labels are for (``schema.output``).
        where: Names a value's place in messages, followed by its index label (e.g.
            ``"labels.csv line"`` with the frame indexed by line number).
        owner: The version, in messages (e.g. ``model@v1.1.0``).

    Raises:
        InvalidInput: The first label that is not one of the classes (classifier) or not a
            finite number (regressor), with its row, its value and what is expected.
    """
    return coerce_labels_of(values, [(owner, output)], where)


def coerce_labels_of(values: pd.Series, contracts: Sequence[tuple[str, OutputContract]], where: str) -> pd.Series:
    """``values`` as the label type of the first of several versions each fits (live, then a
    canary or shadow serving beside it): a class only the canary has is a label too.

    Args:
        values: The labels as given.
        contracts: ``(owner, output contract)`` of each version serving, the live one first.
        where: Names a value's place in messages, followed by its index label.

    Raises:
        InvalidInput: The first label that fits none of them, with what each expects.
    """
    kinds = [(output, class_kind(output)) for _, output in contracts]
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    converted = []
    for code, value in enumerate(uniques):
        typed = _BAD
        for output, kind in kinds:
            typed = _number(value) if kind is None else _class(value, kind, output.classes or [])
            if typed is not _BAD:
                break
        if typed is _BAD:
            at = values.index[int(np.flatnonzero(codes == code)[0])]
            wanted = " nor ".join(expected(output, owner) for owner, output in contracts)
            serving = "the version live" if len(contracts) == 1 else "a version serving"
            raise InvalidInput(
                f"{where} {at}: label {_shown(value)} is not {wanted}.",
                f"Labels must be what {serving} in the environment predicts; fix that row.",
            )
        converted.append(typed)
    out = np.array([*converted, None], dtype=object)[codes]  # code -1 (missing) picks the trailing None
    return pd.Series(out, index=values.index, dtype=object)


def class_kind(output: OutputContract) -> type | None:
    """The Python type of a classifier's classes (``str``, ``bool``, ``int`` or ``float``); None
    for a regressor."""
    if output.kind != "classification":
        return None
    dtype = output.dtypes.get("prediction", "object").lower()
    if dtype in ("bool", "boolean"):
        return bool
    if dtype.startswith(("int", "uint")):
        return int
    if dtype.startswith("float"):
        return float
    return str


def expected(output: OutputContract, owner: str) -> str:
    """What a label of ``owner`` must be, in words."""
    kind = class_kind(output)
    if kind is None:
        return f"a finite number ({owner} is a regressor)"
    names = {bool: "booleans", int: "integers", float: "numbers", str: "text"}[kind]
    shown = ", ".join(repr(c) if kind is str else c for c in output.classes or [])
    return f"one of the classes of {owner} ({names}: {shown})"


_BAD = object()


def _shown(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> Any:
    """A regressor's label as a finite float, or _BAD."""
    if isinstance(value, bool | np.bool_):
        return _BAD
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return _BAD
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return number if math.isfinite(number) else _BAD
    return _BAD


def _class(value: Any, kind: type, classes: list[str]) -> Any:
    """A classifier's label as one of ``classes`` (their text) in the classes' type, or _BAD."""
    typed = _typed(value, kind)
    if typed is _BAD:
        return _BAD
    text = str(typed) if kind is not float else _float_text(typed)
    if text in classes:
        return typed
    stripped = typed.strip() if isinstance(typed, str) else typed  # " setosa" from a hand-written CSV
    return stripped if stripped != typed and stripped in classes else _BAD


def _typed(value: Any, kind: type) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if kind is str:  # text as is; an integer may name a text class ("0", "1")
        if isinstance(value, str):
            return value
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int | float) else ""
        return True if text in _TRUE else False if text in _FALSE else _BAD
    number = _number(value)
    if number is _BAD:
        return _BAD
    if kind is int:
        return int(number) if float(number).is_integer() else _BAD
    return number


def _float_text(value: float) -> str:
    return str(value)
