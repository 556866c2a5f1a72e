"""A reference profile built from a held-out split lines its inputs, answers and labels up by position.

A winery registers its cultivar classifier (string classes) with the holdout that
``train_test_split`` gives: a shuffled, non-default index, as pandas keeps it. The profile
holds one answer and one label for every holdout row, and the default gates pass when the
model serves healthy traffic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rollbackkit import Registry
from rollbackkit.analysis.gates import evaluate

from .conftest import new_repo


def _wines() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    loaded = load_wine(as_frame=True)
    frame = loaded.frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = np.asarray(["barolo", "grignolino", "barbera"], dtype=object)[frame["cultivar"]]
    return frame


def test_a_holdout_with_a_shuffled_index_gives_a_whole_profile_and_healthy_traffic_passes(
    tmp_path: Path, isolated_home: Path
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wines = _wines()
    train, holdout = train_test_split(wines, test_size=0.3, random_state=0)
    assert not holdout.index.equals(pd.RangeIndex(len(holdout)))  # as the user passes it: index kept
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        train.drop(columns=["cultivar"]), train["cultivar"]
    )
    registry = Registry.init(new_repo(tmp_path / "winery", "winery"))
    registry.register("wine", model, train, target="cultivar", version="v1.0.0", validation_data=holdout)

    bundle = registry.load("wine@v1.0.0")
    reference = bundle.reference
    assert len(reference) == len(holdout)
    assert reference["output:prediction"].notna().all()
    assert list(reference["label:cultivar"]) == list(holdout["cultivar"])
    assert list(reference["input:proline"]) == list(holdout["proline"])

    rng = np.random.default_rng(5)  # healthy traffic: the wines resampled, 2% noise on the measurements
    traffic = wines.drop(columns=["cultivar"]).iloc[rng.integers(0, len(wines), 600)].reset_index(drop=True)
    traffic = traffic * rng.normal(1.0, 0.02, traffic.shape)
    answers = bundle.predict(traffic)
    window = pd.concat([traffic, answers.reset_index(drop=True)], axis=1).assign(latency_ms=4.0, error=None)
    report = evaluate(registry.describe("wine@v1.0.0"), window)
    assert report.decision == "pass", report.summary()
    assert "prediction-drift" in {g.name for g in report.gates}
