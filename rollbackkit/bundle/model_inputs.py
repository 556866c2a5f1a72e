"""What the model gets: ``preprocess()``'s output cut to the model's own feature names, in its order.

One rule for register, ``LoadedBundle.predict``, the server and the parity check: a caller
sends the raw columns the schema records; ``preprocess()`` may keep, drop or add columns
(``ratio = a / b``); the model is given exactly the features it recorded at training, in
the trained order, and nothing else. A model that recorded no names gets the output as it is.
"""

from __future__ import annotations

import pandas as pd

from rollbackkit.bundle.flavors.base import Scorer
from rollbackkit.errors import InvalidInput


def model_features(
    scorer: Scorer, features: pd.DataFrame, code: str = "preprocess()", *, strict: bool = True
) -> pd.DataFrame:
    """``features`` cut to the model's recorded feature names in their trained order.

    Args:
        scorer: The loaded model.
        features: ``preprocess()``'s output (or the raw inputs when there is none).
        code: How messages name the preprocessing (``preprocess() in features.py``).
        strict: Refuse an output that lacks a model feature; else keep the ones it has (the
            parity check reports the others as no longer produced).

    Raises:
        InvalidInput: ``strict`` and the output lacks a feature the model was trained on (named).
    """
    columns = [str(c) for c in features.columns]
    expected = scorer.input_names_as(columns)
    if expected is None or expected == columns:
        return features
    missing = [name for name in expected if name not in set(columns)]
    if missing and not strict:
        expected = [name for name in expected if name not in missing]
    elif missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidInput(
            f"{code} leaves out the model's feature(s) {', '.join(missing[:5])}{more}; the model was trained on them.",
            "Return every column the model was trained on from preprocess(), or a model trained on its output.",
        )
    if columns != list(features.columns):
        features = features.rename(columns=str)
    return features[expected]
