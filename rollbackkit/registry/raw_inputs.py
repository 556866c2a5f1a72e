"""The raw input columns a version records (what a caller sends), and its ``preprocess.py`` run on the data.

The data may be wider than the model. ``features=[...]`` names the raw inputs; without it and
without a preprocess, they are the feature names the model recorded when the data has them all
(else every column but the target). With a preprocess, the raw inputs a caller
sends (recorded in the schema) are every column but the target, less the columns the model
does not name when the preprocessing gives the model the very same features without them
(tried together, then one by one on a sample and confirmed on the whole data). A column the
preprocessing reads for a derived feature stays a raw input.
"""

from __future__ import annotations

import warnings

import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, Preprocess, describe_error
from rollbackkit.bundle.flavors.base import Scorer
from rollbackkit.bundle.model_inputs import model_features
from rollbackkit.errors import InvalidInput

PROBE_ROWS = 256
"""Rows the columns are tried on one by one (the result is confirmed on every row)."""
MAX_PROBED_COLUMNS = 64
"""Beyond this many columns the model does not name, they are tried together only."""


def input_columns(
    frame: pd.DataFrame, target: str | None, features: list[str] | None, scorer: Scorer | None
) -> list[str] | None:
    """The raw input columns ``features`` names, else the model's recorded names when ``frame`` has them all
    (None: every column but the target; :func:`needed_columns` narrows that with a preprocess)."""
    present = [str(c) for c in frame.columns]
    if features is not None:
        if not features:
            raise InvalidInput("--features names no column.", "List the model's input columns, e.g. age,income.")
        unknown = [f for f in features if f not in present]
        if unknown:
            raise InvalidInput(
                f"--features names column(s) not in the training data: {', '.join(unknown[:5])}.",
                f"Choose from: {', '.join(present[:10])}{', ...' if len(present) > 10 else ''}.",
            )
        if target is not None and target in features:
            raise InvalidInput(f"The target {target!r} is listed in --features.", "Leave the label column out.")
        if len(set(features)) != len(features):
            raise InvalidInput("--features lists a column twice.", "Name each feature once.")
        return list(features)
    names = scorer.input_names_as(present) if scorer is not None else None
    if names is not None and set(names) <= set(present):
        return names
    return None


def inputs_of(frame: pd.DataFrame, target: str | None, columns: list[str] | None, what: str = "data") -> pd.DataFrame:
    """``frame``'s raw inputs: ``columns`` (None: all but the target); a missing one is one InvalidInput line."""
    if target is not None and target not in frame.columns:
        raise InvalidInput(
            f"Target column {target!r} is not in the {what}.",
            f"Choose one of: {', '.join(map(str, frame.columns[:10]))}.",
        )
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"The {what} lacks the model's feature(s): {', '.join(missing[:5])}.",
                "Pass data with every training feature.",
            )
        return frame[columns]
    return frame if target is None else frame.drop(columns=[target])


def apply_preprocess(prep: Preprocess, frame: pd.DataFrame, what: str, code: str) -> pd.DataFrame:
    """``prep`` on a copy of ``frame``; its failure or a non-DataFrame answer is one InvalidInput line."""
    try:
        result = prep(frame.copy())
    except USER_CODE_ERRORS as exc:  # sys.exit() in user code must not end register with exit 0
        raise InvalidInput(
            f"{code} failed on the {what}: {describe_error(exc)}.", "Fix the preprocessing code."
        ) from exc
    if not isinstance(result, pd.DataFrame):
        raise InvalidInput(
            f"{code} returned {type(result).__name__}, not a DataFrame.",
            "Return a pandas DataFrame from preprocess().",
        )
    return result


def needed_columns(prep: Preprocess, inputs: pd.DataFrame, features: pd.DataFrame, scorer: Scorer) -> list[str]:
    """The raw columns of ``inputs`` that ``prep`` needs to give the model ``features``.

    Args:
        prep: The preprocessing.
        inputs: Every raw column but the target.
        features: What the model gets from ``prep(inputs)`` (cut to its feature names).
        scorer: The model (a model that recorded no names keeps every column).
    """
    every = [str(c) for c in inputs.columns]
    names = scorer.input_names_as(every)
    if names is None:
        return every
    unnamed = [c for c in every if c not in set(names)]
    if not unnamed:
        return every
    named = [c for c in every if c in set(names)]
    if _same(prep, inputs[named], features, scorer):
        return named
    if len(unnamed) > MAX_PROBED_COLUMNS:
        return every
    sample, want = inputs.iloc[:PROBE_ROWS], features.iloc[:PROBE_ROWS]
    kept = every
    for column in unnamed:
        trial = [c for c in kept if c != column]
        if _same(prep, sample[trial], want, scorer):
            kept = trial
    return kept if kept != every and _same(prep, inputs[kept], features, scorer) else every


def _same(prep: Preprocess, frame: pd.DataFrame, want: pd.DataFrame, scorer: Scorer) -> bool:
    """Whether ``prep`` gives the model exactly ``want`` from ``frame``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = model_features(scorer, prep(frame.copy()))
    except USER_CODE_ERRORS:  # it needs a column left out (or calls sys.exit()): keep that column
        return False
    return isinstance(got, pd.DataFrame) and got.equals(want)
