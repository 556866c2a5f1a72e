"""Answers as JSON records: every dtype a model answers with, missing and non-finite values as null.

``json_records`` builds records column by column for speed; the specification is the plain
``to_dict(orient="records")`` with missing and non-finite values as None, checked here on
generated frames of every dtype a flavor returns (labels as text, booleans, integers,
nullable integers, floats with NaN and infinities, categories, datetimes).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit.serving.wire import json_records


def _specification(frame: pd.DataFrame) -> list[dict[str, Any]]:
    plain = frame.astype(object).where(frame.notna(), None)
    records = plain.to_dict(orient="records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = None
    return records


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
COLUMNS = {
    "text": lambda n: st.lists(st.sampled_from(["yes", "no", "maybe"]), min_size=n, max_size=n),
    "flag": lambda n: st.lists(st.booleans(), min_size=n, max_size=n),
    "count": lambda n: st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
    "score": lambda n: st.lists(floats, min_size=n, max_size=n),
    "nullable": lambda n: st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=n, max_size=n),
}


@st.composite
def answers(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    data = {name: draw(make(n)) for name, make in COLUMNS.items()}
    frame = pd.DataFrame(
        {
            "prediction": data["text"],
            "flag": np.array(data["flag"], dtype=bool),
            "count": np.array(data["count"], dtype="int64"),
            "proba_yes": np.array(data["score"], dtype="float64"),
            "visits": pd.array(data["nullable"], dtype="Int64"),
            "segment": pd.Categorical([t if f else None for t, f in zip(data["text"], data["flag"], strict=True)]),
            "when": pd.to_datetime(["2026-11-30T03:00:00Z" if f else None for f in data["flag"]], utc=True),
        }
    )
    keep = draw(st.lists(st.sampled_from(list(frame.columns)), min_size=1, unique=True))
    return frame[keep]


@settings(max_examples=150, deadline=None)
@given(answers())
def test_records_are_the_plain_records_with_nulls(frame: pd.DataFrame) -> None:
    records = json_records(frame)
    assert json.dumps(records, default=str) == json.dumps(_specification(frame), default=str)
    for record in records:  # what JSON writes as is: no numpy scalars, no NaN
        for value in record.values():
            assert not isinstance(value, np.generic)
            assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"x": st.one_of(floats.filter(math.isfinite), st.integers(-5, 5)), "y": floats.filter(math.isfinite)}
        ),
        min_size=1,
        max_size=80,
    )
)
def test_request_rows_of_floats_make_the_frame_pandas_would(records: list[dict[str, Any]]) -> None:
    from rollbackkit.serving.wire import records_frame

    pd.testing.assert_frame_equal(records_frame(records), pd.DataFrame.from_records(records))
