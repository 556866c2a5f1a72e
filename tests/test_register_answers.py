"""What register learns from a model's own answers, on data a new user brought.

A string column with gaps, numbered columns from a numpy example, an ``Int64`` target and a
Python model whose probabilities are not probabilities: each once misled ``register`` into a
schema that later refused the version's own data, a crash, float labels, or a bad model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.errors import InvalidInput


def _wine(rows_missing: float = 0.13) -> pd.DataFrame:
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :4].copy()
    rng = np.random.default_rng(0)
    frame["code"] = pd.array(rng.choice(["a", "b", "c"], len(frame)), dtype="string")
    frame.loc[rng.random(len(frame)) < rows_missing, "code"] = pd.NA
    return frame.assign(cultivar=y.astype("Int64") * 10 + 10)  # 10, 20, 30 as a nullable integer target


def test_a_text_column_with_gaps_accepts_the_gaps_it_was_trained_with(project: Path) -> None:
    import xgboost as xgb

    frame = _wine()
    X = frame.drop(columns="cultivar")
    model = xgb.XGBClassifier(enable_categorical=True, n_estimators=10, nthread=1)
    model.fit(X.assign(code=X["code"].astype("category")), frame["cultivar"] // 10 - 1)
    registry = Registry(project)
    registry.register("wine", model, frame, target="cultivar", version="v1.0.0")
    bundle = registry.load("wine@v1.0.0")
    assert next(f for f in bundle.schema.features if f.name == "code").accepts_null is True
    assert len(bundle.predict(X)) == len(X)  # the training rows, gaps included
    one = X[X["code"].isna()].head(1)
    assert bundle.predict(one)["prediction"].tolist()[0] in {10, 20, 30}  # a lone gap scores too


def test_an_integer_target_keeps_integer_labels_with_lightgbm(project: Path) -> None:
    import lightgbm as lgb

    frame = _wine().drop(columns="code")
    model = lgb.LGBMClassifier(n_estimators=10, num_threads=1, verbose=-1)
    model.fit(frame.drop(columns="cultivar"), frame["cultivar"])  # LightGBM reads Int64 as floats
    registry = Registry(project)
    registry.register("wine", model, frame, target="cultivar", version="v1.0.0")
    answers = registry.load("wine@v1.0.0").predict(frame.drop(columns="cultivar").head(5))
    assert list(answers.columns) == ["prediction", "proba_10", "proba_20", "proba_30"]
    assert {type(v) for v in answers["prediction"].tolist()} == {int}


def test_numbered_columns_from_a_numpy_example_are_probed(project: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    graph = to_onnx(LogisticRegression(max_iter=300).fit(X, y), X[:1].astype(np.float32), target_opset=17)
    frame = pd.DataFrame(X.astype(np.float32)).assign(species=y)  # columns 0, 1, 2, 3 as an MLflow example has
    registry = Registry(project)
    registry.register("iris", graph, frame, target="species", version="v1.0.0")
    answers = registry.load("iris@v1.0.0").predict(frame.drop(columns="species").head(3))
    assert answers["prediction"].tolist() == [0, 0, 0]


BAD_PROBA = """\
import numpy as np

CLASSES = [False, True]


def load(artifacts):
    return None


def predict(state, frame):
    return (frame.iloc[:, 0] > frame.iloc[:, 0].median()).to_numpy()


def predict_proba(state, frame):
    p = np.full(len(frame), 0.0014)
    return np.column_stack([p, p])
"""


def test_probabilities_that_do_not_sum_to_one_are_refused(project: Path, tmp_path: Path) -> None:
    model = tmp_path / "bad"
    model.mkdir()
    (model / "model.py").write_text(BAD_PROBA)
    frame = _wine().drop(columns="code")
    frame = frame.assign(cultivar=frame["cultivar"] > 15)
    with pytest.raises(InvalidInput, match="not probabilities"):
        Registry(project).register("bad", model, frame, target="cultivar", version="v1.0.0")
    assert Registry(project).versions("bad") == []


def test_a_frame_in_another_column_order_is_told_so(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _wine().drop(columns="code")
    X = frame.drop(columns="cultivar")
    registry = Registry(project)
    registry.register("wine", LogisticRegression(max_iter=500).fit(X, frame["cultivar"]), frame, target="cultivar")
    bundle = registry.load("wine@latest")
    with pytest.raises(Exception, match="the same columns in another order"):
        bundle.predict(X[X.columns[::-1]])
    with pytest.raises(Exception, match=r"columns it was not trained on too \(extra\)"):
        bundle.predict(X.assign(extra=1.0))


def test_an_onnx_graph_onnxruntime_cannot_run_names_the_operator_not_a_broken_file(
    project: Path, tmp_path: Path
) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_diabetes
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(SimpleImputer(), Ridge()).fit(X, y)
    graph = tmp_path / "diabetes.onnx"
    graph.write_bytes(to_onnx(model, X[:1].to_numpy(), target_opset=17).SerializeToString())  # float64 inputs
    with pytest.raises(InvalidInput, match="cannot run one of its operators") as raised:
        Registry(project).register("diabetes", graph, X.assign(target=y), target="target")
    assert "float32" in raised.value.hint and "not a readable" not in raised.value.message


def test_json_numbers_reach_a_float32_onnx_graph(project: Path) -> None:
    """skl2onnx wants float32, so teams register float32 frames; JSON brings 64-bit floats."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from rollbackkit.bundle.compat import check
    from rollbackkit.bundle.conform import conform
    from rollbackkit.serving.wire import records_frame

    data = load_breast_cancer(as_frame=True)
    X = data.frame[list(data.feature_names[:6])].astype("float32")
    model = LogisticRegression(max_iter=2000).fit(X.to_numpy(), data.target)
    graph = to_onnx(model, X.to_numpy()[:1], target_opset=17, options={id(model): {"zipmap": False}})
    registry = Registry(project)
    registry.register("cancer", graph, X.assign(target=data.target), target="target", version="v1.0.0")
    bundle = registry.load("cancer@v1.0.0")
    records = [{k: float(v) for k, v in row.items()} for row in X.head(3).to_dict(orient="records")]
    records[0][X.columns[0]] = 1e300  # overflows float32: left for check() to refuse
    live = conform(records_frame(records), bundle.schema)
    assert [str(t) for t in live.dtypes][1:] == ["float32"] * 5 and str(live.dtypes.iloc[0]) == "float64"
    refused = [f.column for f in check(bundle.schema, live).findings if f.severity == "incompatible"]
    assert refused == [X.columns[0]]  # only the column a float32 cannot hold
    answers = bundle.predict(conform(records_frame(records[1:]), bundle.schema))
    assert answers["prediction"].tolist() == model.predict(X.iloc[1:3].to_numpy()).tolist()
