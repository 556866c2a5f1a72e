"""The ONNX flavor: any ``.onnx`` run through onnxruntime, inputs fed from the columns by name.

The whole story on a scikit-learn pipeline converted with skl2onnx (string labels, one
input per column, columns with spaces renamed by skl2onnx); register and predict for a
LightGBM model converted with onnxmltools (one tensor input, integer labels) and a graph
built with ``onnx.helper`` standing for a PyTorch export (a regressor); and the bad input
a user brings: a truncated file, a graph whose inputs are not the data's columns (no
onnxruntime installed: tests/test_flavor_extras.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.errors import RollbackkitError

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo, run_cli
from .story import SEGMENT, Case, build_project, whole_story

CASE = Case("onnx-string-labels", "breast_cancer", "names")
# The bundle's feature logic: a missing plan is a plan of its own, numbers as float32 (what
# the converted graph takes), the datetime is not a feature.
ONNX_PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=["signup"]).assign(
        plan=frame["plan"].astype("string").fillna("missing").astype(object),
        region=frame["region"].astype(object),
    )
    return frame.astype({c: "float32" for c in frame.columns if c not in ("plan", "region")})
"""


def _converted(X: pd.DataFrame, y: pd.Series, rounds: int) -> Any:
    """A scikit-learn pipeline (impute, encode, boosted trees) converted with skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in X.columns if c not in ("plan", SEGMENT)]
    encode = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan", SEGMENT]),
        ]
    )
    model = make_pipeline(encode, GradientBoostingClassifier(n_estimators=rounds, max_depth=2, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_onnx(model.fit(X, y), X[:1], target_opset={"": 17, "ai.onnx.ml": 3})


def test_the_whole_story_holds_for_a_scikit_learn_pipeline_converted_to_onnx(tmp_path: Path) -> None:
    def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> str:
        assert "mean radius" in X.columns  # skl2onnx names its input mean_radius: matched by name
        path = tmp_path / f"model-{rounds}.onnx"
        path.write_bytes(_converted(X, y, rounds).SerializeToString())
        return str(path)

    repo, live = build_project(tmp_path, fit, CASE, preprocess=ONNX_PREPROCESS, rounds=(10, 30))
    bundle = Registry(repo).load("model@v1.0.0")
    assert bundle.schema.estimator.flavor == "onnx" and bundle.schema.estimator.size["trees"] == 10
    assert bundle.schema.output.classes == ["benign", "malignant"]
    shown = run_cli("show", "model@v1.1.0", cwd=repo)
    assert shown.returncode == 0 and "onnx model" in shown.stdout, shown.stdout + shown.stderr
    whole_story(repo, live, list(live.columns[:6]), str, ["model trees: 10 -> 30"])


# --------------------------------------------------------------------------- register + predict
@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["age", "income", "tenure"]).astype("float32")
    return X.assign(target=np.where(X["age"] + X["income"] > 0, 3, 0))


def _lightgbm_onnx(frame: pd.DataFrame, width: int = 3) -> Any:
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    X = frame.drop(columns=["target"]).iloc[:, :width]
    model = lightgbm.LGBMClassifier(n_estimators=8, n_jobs=1, verbose=-1).fit(X.to_numpy(), frame["target"])
    return model, convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, width]))])


def test_lightgbm_converted_with_onnxmltools_answers_its_integer_labels(tmp_path: Path, frame: pd.DataFrame) -> None:
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    model, proto = _lightgbm_onnx(frame)
    path = tmp_path / "lgbm.onnx"
    path.write_bytes(proto.SerializeToString())
    registry.register("lgbm", str(path), frame, target="target", version="v1.0.0")
    bundle = registry.load("lgbm@v1.0.0")
    X = frame.drop(columns=["target"])
    out = bundle.predict(X.iloc[:50])
    assert [type(v) for v in out["prediction"].tolist()[:1]] == [int]
    assert out["prediction"].tolist() == model.predict(X.iloc[:50].to_numpy()).tolist()
    assert np.allclose(out["proba_3"], model.predict_proba(X.iloc[:50].to_numpy())[:, 1], atol=1e-5)
    assert bundle.schema.estimator.n_features_in == 3 and bundle.schema.estimator.size["trees"] == 8
    parity = run_cli("parity", "lgbm@v1.0.0", "--json", cwd=repo)
    assert parity.returncode == 0 and '"ok": true' in parity.stdout, parity.stdout + parity.stderr


def _mlp(hidden: int, layers: int = 1) -> Any:
    """What torch.onnx.export writes for a small MLP regressor: Gemm/Relu layers on input [N, 3]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(hidden)
    nodes, weights, previous, width = [], [], "input", 3
    for i in range(layers):
        w = numpy_helper.from_array(rng.normal(size=(width, hidden)).astype("float32"), f"w{i}")
        b = numpy_helper.from_array(rng.normal(size=hidden).astype("float32"), f"b{i}")
        nodes += [helper.make_node("Gemm", [previous, f"w{i}", f"b{i}"], [f"h{i}"], name=f"/layer{i}/Gemm")]
        nodes += [helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"/layer{i}/Relu")]
        weights += [w, b]
        previous, width = f"r{i}", hidden
    out_w = numpy_helper.from_array(rng.normal(size=(width, 1)).astype("float32"), "w_out")
    nodes.append(helper.make_node("Gemm", [previous, "w_out"], ["output"], name="/head/Gemm"))
    graph = helper.make_graph(
        nodes,
        "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])],
        [*weights, out_w],
    )
    return helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])


def _mlp_answer(proto: Any, X: np.ndarray) -> np.ndarray:
    from onnx import numpy_helper

    w = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    h = X.astype("float32")
    i = 0
    while f"w{i}" in w:
        h = np.maximum(h @ w[f"w{i}"] + w[f"b{i}"], 0)
        i += 1
    return (h @ w["w_out"])[:, 0]


def test_a_graph_standing_for_a_pytorch_export_is_a_regressor_and_diff_names_its_nodes(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    data = frame.assign(target=frame["age"] * 2.0)
    v1, v2 = _mlp(4), _mlp(4, layers=2)
    registry.register("mlp", v1, data, target="target", version="v1.0.0")  # the ModelProto itself
    registry.register("mlp", v2, data, target="target", version="v1.1.0")
    X = data.drop(columns=["target"])
    out = registry.load("mlp@v1.1.0").predict(X.iloc[:20])
    assert np.allclose(out["prediction"], _mlp_answer(v2, X.iloc[:20].to_numpy()), atol=1e-4)
    schema = registry.load("mlp@v1.0.0").schema
    assert schema.output.kind == "regression" and schema.estimator.params["producer_name"] == "pytorch"
    diff = run_cli("diff", "mlp@v1.0.0", "mlp@v1.1.0", cwd=repo)
    assert diff.returncode == 0 and "model nodes: 3 -> 5" in diff.stdout, diff.stdout + diff.stderr
    assert "+ model step added: /layer1/Gemm" in diff.stdout, diff.stdout


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path, frame: pd.DataFrame) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("onnx-bad")
    repo = new_repo(where / "project", "onnx bad input")
    Registry.init(repo)
    rollbackkit("register", "m", "--model", "absent.onnx", "--train-data", "absent.csv", cwd=repo)  # lock files
    train = where / "train.csv"
    frame.to_csv(train, index=False)
    whole = where / "whole.onnx"
    whole.write_bytes(_lightgbm_onnx(frame)[1].SerializeToString())
    return {"repo": repo, "train": train, "whole": whole, "where": where}


def _register(project: dict[str, Path], model: Path) -> Any:
    args = ("register", "m", "--model", str(model), "--train-data", str(project["train"]), "--target", "target")
    return rollbackkit(*args, cwd=project["repo"])


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02])
def test_a_truncated_onnx_file_is_one_line_and_nothing_registered(project: dict[str, Path], keep: float) -> None:
    data = project["whole"].read_bytes()
    cut = project["where"] / f"cut-{keep}.onnx"
    cut.write_bytes(data[: int(len(data) * keep)])
    before = state(project["repo"])
    assert_one_clean_line(_register(project, cut), str(cut), "ONNX")
    assert state(project["repo"]) == before


def test_a_graph_whose_inputs_are_not_the_data_columns_is_refused_naming_the_file(
    project: dict[str, Path], frame: pd.DataFrame
) -> None:
    from skl2onnx import to_onnx
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = frame.drop(columns=["target"]).rename(columns={"tenure": "months"})
    other = project["where"] / "other-columns.onnx"  # one input per column: age, income, months
    scale = make_column_transformer((StandardScaler(), list(X.columns)))
    model = make_pipeline(scale, LogisticRegression()).fit(X, frame["target"])
    other.write_bytes(to_onnx(model, X[:1], options={"zipmap": False}).SerializeToString())
    before = state(project["repo"])
    assert_one_clean_line(_register(project, other), str(other), "months", "tenure")
    assert state(project["repo"]) == before

    narrow = project["where"] / "two-features.onnx"
    narrow.write_bytes(_lightgbm_onnx(frame, width=2)[1].SerializeToString())
    assert_one_clean_line(_register(project, narrow), str(narrow), "takes 2 features", "gives it 3")
    assert state(project["repo"]) == before


def test_a_graph_reading_weights_from_another_file_is_refused(project: dict[str, Path]) -> None:
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 1], [1.0, 2.0, 3.0])
    weights.data_location = TensorProto.EXTERNAL
    del weights.float_data[:]
    weights.external_data.add(key="location", value="../../../etc/passwd")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        "external",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])],
        [weights],
    )
    path = project["where"] / "external.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    before = state(project["repo"])
    assert_one_clean_line(_register(project, path), str(path), "external data")
    assert state(project["repo"]) == before


def _reading(where: str, location: str) -> Any:
    """A graph adding ``input`` to a weight whose values sit in ``location`` (another file), put ``where``."""
    from onnx import TensorProto, helper

    values = helper.make_tensor("w", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    values.data_location = TensorProto.EXTERNAL
    del values.float_data[:]
    values.external_data.add(key="location", value=location)
    dense = helper.make_tensor("w", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    sparse = helper.make_sparse_tensor(values, helper.make_tensor("i", TensorProto.INT64, [3], [0, 1, 2]), [3])
    nodes = [helper.make_node("Add", ["input", "w"], ["output"])]
    initializers, functions = [], []
    if where == "sparse constant":
        nodes.insert(0, helper.make_node("Constant", [], ["w"], sparse_value=sparse))
    elif where == "subgraph":
        branch = helper.make_graph(
            [helper.make_node("Constant", [], ["b"], value=values)],
            "branch",
            [],
            [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
        )
        nodes.insert(0, helper.make_node("If", ["flag"], ["w"], then_branch=branch, else_branch=branch))
        initializers.append(helper.make_tensor("flag", TensorProto.BOOL, [], [True]))
    elif where == "function":
        body = helper.make_node("Constant", [], ["b"], value=values)
        functions.append(helper.make_function("local", "weights", [], ["b"], [body], [helper.make_opsetid("", 17)]))
        nodes.insert(0, helper.make_node("weights", [], ["w"], domain="local"))
    elif where != "sparse initializer":
        initializers.append(dense)
    graph = helper.make_graph(
        nodes,
        "reads-a-file",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        initializers,
    )
    if where == "sparse initializer":
        graph.sparse_initializer.append(sparse)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    return helper.make_model(graph, opset_imports=opsets, functions=functions)


@pytest.mark.parametrize("where", ["sparse initializer", "sparse constant", "subgraph", "function"])
def test_a_graph_reading_another_file_through_any_tensor_is_refused(project: dict[str, Path], where: str) -> None:
    """Security: a sparse tensor's values (or a subgraph's, a function's) in an external file read nothing.

    onnxruntime reads such a tensor from a path under the working directory (the project, at
    register and serve): the graph would answer that file's bytes (.git/config, a token...).
    """
    secret = project["repo"] / "secret.bin"
    secret.write_bytes(np.array([7.0, 8.0, 9.0], dtype="float32").tobytes())
    path = project["where"] / f"reads-{where.replace(' ', '-')}.onnx"
    path.write_bytes(_reading(where, "secret.bin").SerializeToString())
    try:
        before = state(project["repo"])
        assert_one_clean_line(_register(project, path), str(path), "external data")
        assert state(project["repo"]) == before
    finally:
        secret.unlink()


def test_a_session_uses_the_threads_rollbackkit_model_threads_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    from rollbackkit.bundle.flavors.onnx_runtime import FLAVOR

    data = _mlp(4).SerializeToString()
    for value, expected in (("2", 2), ("", 1), ("all", 1), ("0", 1)):
        monkeypatch.setenv("ROLLBACKKIT_MODEL_THREADS", value)
        session = FLAVOR.load(data, None, "mlp.onnx").native
        assert session.get_session_options().intra_op_num_threads == expected, value


# --------------------------------------------------------------------------- labels and missing values
def _logistic_onnx(frame: pd.DataFrame, target: pd.Series, zipmap: bool) -> Any:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = frame[["age", "income", "tenure"]]
    model = LogisticRegression().fit(X, target)
    return model, to_onnx(model, X.to_numpy()[:1], options={"zipmap": zipmap})


@pytest.mark.parametrize("zipmap", [False, True])
def test_boolean_labels_answer_booleans_and_a_missing_value_is_not_accepted(
    tmp_path: Path, frame: pd.DataFrame, zipmap: bool
) -> None:
    """ONNX has no boolean labels: a graph converted from a model fitted on booleans records 0/1."""
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    churned = frame["age"] > 0
    model, proto = _logistic_onnx(frame, churned, zipmap)
    path = tmp_path / "bools.onnx"
    path.write_bytes(proto.SerializeToString())
    registry.register("bools", str(path), frame.assign(target=churned), target="target", version="v1.0.0")
    bundle = registry.load("bools@v1.0.0")
    X = frame.drop(columns=["target"])
    out = bundle.predict(X.iloc[:20])
    assert [type(v) for v in out["prediction"].tolist()] == [bool] * 20
    assert out["prediction"].tolist() == model.predict(X.iloc[:20]).tolist()
    assert list(out.columns) == ["prediction", "proba_False", "proba_True"]
    # a NaN reaches the graph and comes back as NaN probabilities: the column does not take nulls
    assert {f.name: f.accepts_null for f in bundle.schema.features} == dict.fromkeys(X.columns, False)


def _softmax(width: int, classes: int) -> Any:
    """What torch.onnx.export writes for a classifier: logits through Softmax, no class labels."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(classes)
    w = numpy_helper.from_array(rng.normal(size=(width, classes)).astype("float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probs"])],
        "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", classes])],
        [w],
    )
    return helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])


def test_a_graph_without_class_labels_answers_the_targets_labels(tmp_path: Path, frame: pd.DataFrame) -> None:
    """Class i is the i-th of the target's sorted labels (how the labels were encoded to train it)."""
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    proto = _softmax(3, 3)
    labels = np.array(["high", "low", "mid"])
    X = frame.drop(columns=["target"])
    target = labels[(X.to_numpy() @ _weights(proto)).argmax(axis=1)]  # the labels it was trained on, encoded sorted
    registry.register("soft", proto, X.assign(target=target), target="target", version="v1.0.0")
    bundle = registry.load("soft@v1.0.0")
    out = bundle.predict(X.iloc[:10])
    assert bundle.schema.output.classes == ["high", "low", "mid"]
    expected = labels[(X.iloc[:10].to_numpy() @ _weights(proto)).argmax(axis=1)]
    assert out["prediction"].tolist() == expected.tolist()
    assert list(out.columns) == ["prediction", "proba_high", "proba_low", "proba_mid"]

    numbered = frame.assign(target=np.arange(len(frame)) % 2)  # integer labels 0, 1: they are the classes
    registry.register("ints", _softmax(3, 2), numbered, target="target", version="v1.0.0")
    assert registry.load("ints@v1.0.0").predict(X.iloc[:3])["prediction"].map(type).tolist() == [int] * 3


def _weights(proto: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(proto.graph.initializer[0])


def test_a_text_column_for_a_numeric_input_is_one_line_naming_it(project: dict[str, Path], frame: pd.DataFrame) -> None:
    """The graph takes numbers in one tensor; a category's labels there name the column (not float())."""
    labelled = project["where"] / "labelled.csv"
    frame.assign(income=np.where(frame["income"] > 0, "high", "low")).to_csv(labelled, index=False)
    args = ("register", "m", "--model", str(project["whole"]), "--train-data", str(labelled), "--target", "target")
    before = state(project["repo"])
    assert_one_clean_line(rollbackkit(*args, cwd=project["repo"]), "'income'", "'low'", "tensor(float)")
    assert state(project["repo"]) == before


def test_columns_are_fed_in_the_registered_order_whatever_order_a_frame_brings(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """A tensor input takes columns by position: the schema holds every frame to the registered order."""
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    model, proto = _lightgbm_onnx(frame)
    registry.register("lgbm", proto, frame, target="target", version="v1.0.0")
    bundle = registry.load("lgbm@v1.0.0")
    X = frame.drop(columns=["target"]).iloc[:40]
    reordered = X[["tenure", "age", "income"]]
    with pytest.raises(RollbackkitError, match="fixed order"):
        bundle.predict(reordered)
    from rollbackkit.bundle.compat import check

    out = bundle.predict(reordered, adaptation=check(bundle.schema, reordered).adaptation)
    assert out["prediction"].tolist() == model.predict(X.to_numpy()).tolist()
