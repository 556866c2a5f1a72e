"""One rule for a column: what ``check`` calls incompatible, ``predict`` refuses, and the reverse.

A user checks a live frame against wine@v1.0.0 (string classes; Int64, boolean, string and
category inputs) before a rollback, then scores it. Whatever dtypes the frame arrives in
(ints, fractional or whole-number floats, booleans, nullable dtypes, text, categories, Python
objects, missing values), the check's verdict and the scoring agree, and every conversion the
adaptation declares is named by a finding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.bundle.compat import check
from rollbackkit.errors import IncompatibleInput

from .rich_project import WINE, rich_project
from .story import widened

FORMS = ("int", "float", "whole", "bool", "Int64", "boolean", "string", "category", "object_bool", "object_text")
VARIED = ("alcohol", "visits", "promo", "plan", "region")


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> object:
    repo: Path = rich_project(tmp_path_factory)
    return Registry(repo).load("wine@v1.0.0")


def _column(form: str, base: pd.Series, rng: np.random.Generator, texts: list[str], missing: bool) -> pd.Series:
    """``base`` sent as ``form`` (numbers rounded from its values, so they stay in the trained range)."""
    n = len(base)
    numeric = pd.api.types.is_numeric_dtype(base.dtype) and not pd.api.types.is_bool_dtype(base.dtype)
    ints = base.astype("float64").fillna(3).round().astype("int64").to_numpy() if numeric else rng.integers(1, 6, n)
    flags = rng.random(n) < 0.5
    words = np.asarray(texts)[rng.integers(0, len(texts), n)]
    column = {
        "int": lambda: pd.Series(ints, dtype="int64"),
        "float": lambda: pd.Series(ints + 0.5),
        "whole": lambda: pd.Series(ints.astype("float64")),
        "bool": lambda: pd.Series(flags),
        "Int64": lambda: pd.Series(ints, dtype="Int64"),
        "boolean": lambda: pd.Series(flags, dtype="boolean"),
        "string": lambda: pd.Series(words, dtype="string"),
        "category": lambda: pd.Series(pd.Categorical(words)),
        "object_bool": lambda: pd.Series([bool(v) for v in flags], dtype=object),
        "object_text": lambda: pd.Series(["yes" if v else "no" for v in flags], dtype=object),
    }[form]()
    if missing and form not in ("int", "bool"):  # numpy ints and bools hold no missing value
        column = column.astype(object) if form.startswith("object") else column
        column.iloc[0] = None
    return column


def _outcome(bundle: object, frame: pd.DataFrame, adaptation: object = None) -> str | None:
    """None when the version scores the frame, else its one-line refusal."""
    try:
        bundle.predict(frame, adaptation=adaptation)  # type: ignore[attr-defined]
    except IncompatibleInput as exc:
        assert "\n" not in str(exc)
        return str(exc)
    return None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(st.tuples(st.sampled_from(VARIED), st.sampled_from(FORMS), st.booleans()), min_size=1, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_check_and_predict_agree_on_any_dtypes(wine: object, changes: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = widened(WINE, 40, seed=seed).drop(columns=["target"])
    schema = wine.schema  # type: ignore[attr-defined]
    for name, form, missing in changes:  # one or two columns sent in another dtype, maybe with a null
        texts = next(f for f in schema.features if f.name == name).categories or ["a", "b"]
        frame[name] = _column(form, frame[name], rng, texts, missing)
    frame = frame[schema.feature_names]

    full = check(wine, frame)
    refused = _outcome(wine, frame)
    assert (refused is not None) == (full.verdict == "incompatible"), (full.to_dict(), refused)

    per_request = check(wine, frame, domain=False)  # the serving rule: dtypes now, domains over windows
    event(f"{full.verdict} / per request {per_request.verdict}")
    refused = _outcome(wine, frame, per_request.adaptation)
    assert (refused is not None) == (per_request.verdict == "incompatible"), (per_request.to_dict(), refused)
    for finding in [f for f in per_request.findings if f.kind == "dtype"][:3]:  # the refusal names the first three
        assert refused is not None and f"{finding.column}: dtype ({finding.detail})" in refused
    for name, cast in per_request.adaptation.casts.items():
        assert any(f.column == name and f.kind == "cast" and cast in f.detail for f in per_request.findings)
