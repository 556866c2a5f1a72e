"""What a bundle holds: preprocessing, golden sample, reference profile, model formats, ids."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from rollbackkit import Registry
from rollbackkit.bundle.frames import part
from rollbackkit.errors import InvalidInput, UntrustedModel

from .conftest import Data, run_cli

PREPROCESS = """
import numpy as np
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["mean radius", "mean texture", "mean area"]].copy()
    out["log_area"] = np.log1p(frame["mean area"])
    return out
"""


def test_a_bundle_with_preprocessing_code_scores_through_it(project: Path, tmp_path: Path, data: Data) -> None:
    code = tmp_path / "features.py"
    code.write_text(PREPROCESS)
    namespace: dict = {}
    exec(PREPROCESS, namespace)
    features = namespace["preprocess"](data.X)
    model = LogisticRegression(max_iter=5000).fit(features, data.y)

    registry = Registry(project)
    info = registry.register(
        "cancer",
        model,
        data.frame,
        target="target",
        preprocess=code,
        version="v1.0.0",
        validation_data=data.frame.iloc[:200],
    )
    bundle = registry.load(info)
    assert bundle.preprocess_source == PREPROCESS
    raw = bundle.schema.feature_names
    assert raw == ["mean radius", "mean texture", "mean area"]  # what callers send: the columns preprocess reads
    assert np.array_equal(bundle.predict(data.X[raw])["proba_1"].to_numpy(), model.predict_proba(features)[:, 1])
    assert bundle.schema.estimator.feature_names_in == ["mean radius", "mean texture", "mean area", "log_area"]

    golden = bundle.golden
    pd.testing.assert_frame_equal(part(golden, "feature"), features.iloc[:64].reset_index(drop=True))
    assert np.allclose(part(golden, "output")["proba_1"], model.predict_proba(features.iloc[:64])[:, 1])
    assert len(bundle.reference) == 200
    assert list(bundle.reference_part("label").columns) == ["target"]
    assert (Path(project) / "bundles" / "cancer" / "preprocess.py").read_text() == PREPROCESS


@pytest.mark.parametrize("suffix", [".joblib", ".pkl"])
def test_joblib_and_pickle_models_need_unsafe_and_are_flagged(
    project: Path, tmp_path: Path, data: Data, models: dict, suffix: str
) -> None:
    path = tmp_path / f"model{suffix}"
    if suffix == ".joblib":
        joblib.dump(models["v1"], path)
    else:
        path.write_bytes(pickle.dumps(models["v1"]))
    registry = Registry(project)
    with pytest.raises(UntrustedModel, match="--unsafe"):
        registry.register("cancer", path, data.frame, target="target", version="v1.0.0")
    registry.register("cancer", path, data.frame, target="target", version="v1.0.0", unsafe=True)
    shown = registry.show("cancer@v1.0.0")
    assert (shown["unsafe_model_format"], shown["unsafe_allowed"]) == (True, True)
    assert shown["components"]["model"]["path"] == f"model{suffix}"
    assert "warning" in run_cli("show", "cancer@v1.0.0", cwd=project).stdout
    assert (registry.load("cancer@v1.0.0").predict(data.X)["prediction"] == models["v1"].predict(data.X)).all()


def test_a_skops_file_needing_unknown_types_needs_explicit_trust(
    project: Path, tmp_path: Path, data: Data, models: dict
) -> None:
    path = tmp_path / "model.skops"
    sio.dump(models["v2"], path)  # HistGradientBoosting: needs its TreePredictor type
    info = Registry(project).register("cancer", path, data.frame, target="target", version="v1.0.0")
    assert Registry(project).show(info.tag)["trusted_types"] == [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    ]

    class Odd(LogisticRegression):
        """A type outside scikit-learn, as a third-party estimator would be."""

    odd = tmp_path / "odd.skops"
    sio.dump(Odd(max_iter=5000).fit(data.X, data.y), odd)
    with pytest.raises(InvalidInput, match="not trusted by default"):
        Registry(project).register("cancer", odd, data.frame, target="target")


def test_same_component_bytes_give_the_same_id_any_change_gives_a_new_one(
    project: Path, tmp_path: Path, data: Data, models: dict
) -> None:
    model = tmp_path / "model.skops"
    sio.dump(models["v1"], model)
    registry = Registry(project)
    a = registry.register("cancer", model, data.frame, target="target", version="v1.0.0")
    b = registry.register("cancer", model, data.frame, target="target", version="v1.0.1")
    c = registry.register(
        "cancer", model, data.frame, target="target", version="v1.0.2", serving={"predict": "auto", "batch_size": 64}
    )
    assert a.bundle_id == b.bundle_id != c.bundle_id
    assert a.commit != b.commit
