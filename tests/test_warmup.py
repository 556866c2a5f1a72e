"""Warm-up: a version scores its golden sample before it takes traffic, NaN outputs included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.serving.router import Router


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_a_regressor_whose_golden_outputs_hold_nan_warms_up(project: Path) -> None:
    """A square-root target transform answers NaN where the inner fit goes negative: that NaN
    is the registered output, and the same NaN at warm-up is a match, not a failure."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"load": rng.normal(0, 1, 300), "hour": rng.integers(0, 24, 300)})
    frame["demand"] = np.clip(frame["load"] * 3 + 1, 0, None)
    model = TransformedTargetRegressor(
        regressor=LinearRegression(), func=np.square, inverse_func=np.sqrt, check_inverse=False
    ).fit(frame[["load", "hour"]], frame["demand"])
    registry = Registry(project)
    registry.register("demand", model, frame, target="demand", version="v1.0.0")
    bundle = registry.load("demand@v1.0.0")
    assert bundle.golden.filter(like="output:").isna().any().any()  # the golden sample holds NaN

    router = Router()
    router.deploy(bundle)
    assert router.predict(frame[["load", "hour"]].head(3)).version == "v1.0.0"
