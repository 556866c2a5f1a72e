"""XGBoost models in XGBoost's own formats: UBJSON (``.ubj``, the default) and JSON (``.json``).

A ``Booster`` or a scikit-learn wrapper (``XGBClassifier``, ``XGBRegressor``, ...) is stored
as UBJ: XGBoost's default since 2.1, smaller and faster to load than JSON, and exact for
its float32 weights. A wrapper's ``classes_`` go to the manifest (``Stored.classes``).

XGBoost's parsers trust their input (a truncated UBJ file crashes the process), so every
file is first read and checked here, in Python, with bounded memory: the document must be
complete, and every tree's arrays of one length with children after their parent and
splits on features the model has. Only then are the bytes given to XGBoost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from rollbackkit.bundle.flavors.base import (
    Flavor,
    Param,
    Scorer,
    Stored,
    Structure,
    model_threads,
    not_a_model,
    output_from_proba,
    output_from_values,
)
from rollbackkit.bundle.flavors.ubjson import UBJSONError, read_ubjson

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component

LABEL = "XGBoost"
# Training parameters kept in the stored model (XGBoost keeps only the model, not its config).
PARAMS_ATTR = "rollbackkit_training_params"
TRAIN_PARAMS = ("eta", "max_depth", "max_leaves", "subsample", "colsample_bytree", "min_child_weight", "lambda")
_MARGIN_OBJECTIVES = frozenset({"binary:logitraw", "multi:softmax"})


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _scalar(text: Any) -> Param:
    """A config string as a JSON scalar (XGBoost writes every parameter as text)."""
    if not isinstance(text, str):
        return text if isinstance(text, int | float | bool) or text is None else str(text)
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return round(value, 6) if isinstance(value, float) else value
    return text


def _as_category(column: pd.Series) -> pd.Series:
    """A categorical feature as a pandas category; a column of missing values only keeps one
    placeholder category (XGBoost cannot read a category column with none)."""
    if column.isna().all():
        return pd.Series(pd.Categorical([None] * len(column), categories=["<missing>"]), index=column.index)
    return column.astype("category")


class XGBoostScorer(Scorer):
    """An ``xgboost.Booster``: classifies when its objective does, else gives values."""

    flavor = "xgboost"

    def __init__(self, native: Any, classes: Any, objective: str) -> None:
        super().__init__(native, classes)
        self.objective = objective
        self._categorical = [t == "c" for t in (native.feature_types or [])]

    def _frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in its order; text in a categorical feature as a category (recoded by XGBoost)."""
        names = self.input_names()
        frame = features[names] if names is not None and set(names) <= set(map(str, features.columns)) else features
        fixes = {
            col: _as_category(frame[col])
            for col, categorical in zip(frame.columns, self._categorical, strict=False)
            if categorical and (not isinstance(frame[col].dtype, pd.CategoricalDtype) or frame[col].isna().all())
        }
        return frame.assign(**fixes) if fixes else frame

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """``inplace_predict`` on the frame; probabilities from margins where the objective gives labels."""
        frame = self._frame(features)
        margin = self.objective in _MARGIN_OBJECTIVES
        values = np.asarray(
            self.native.inplace_predict(
                frame, predict_type="margin" if margin else "value", validate_features=self.input_names() is not None
            ),
            dtype="float64",
        )
        if self.classes is None:
            return output_from_values(values, features.index)
        if self.objective == "binary:logitraw":
            values = 1.0 / (1.0 + np.exp(-values))
        elif self.objective == "multi:softmax":
            shifted = np.exp(values - values.max(axis=1, keepdims=True))
            values = shifted / shifted.sum(axis=1, keepdims=True)
        return output_from_proba(values, self.classes, features.index)

    def input_names(self) -> list[str] | None:
        """The feature names the Booster recorded (None when trained on an array)."""
        names = self.native.feature_names
        return [str(n) for n in names] if names else None

    def n_inputs(self) -> int | None:
        """``num_features()``."""
        return int(self.native.num_features())

    def structure(self) -> Structure:
        """Objective, booster, rounds, classes and the training parameters kept at save; trees count."""
        config = json.loads(self.native.save_config())["learner"]
        booster = config.get("gradient_booster", {})
        params: dict[str, Param] = {
            "objective": config.get("objective", {}).get("name"),
            "booster": booster.get("name"),
            "num_boost_round": int(self.native.num_boosted_rounds()),
        }
        num_class = _int(config.get("learner_model_param", {}).get("num_class"))
        if num_class:
            params["num_class"] = num_class
        kept = self.native.attr(PARAMS_ATTR)
        if kept:
            params.update({k: _scalar(v) for k, v in json.loads(kept).items()})
        model_param = booster.get("gbtree", booster).get("gbtree_model_param", {})
        trees = _int(model_param.get("num_trees"))
        return Structure(steps=["Booster"], params=params, size={"trees": trees} if trees else {})


class XGBoostFlavor(Flavor):
    """XGBoost Boosters and scikit-learn wrappers in XGBoost's UBJ/JSON model files."""

    name = "xgboost"
    label = LABEL
    library = "xgboost"
    extra = "xgboost"
    formats: ClassVar[dict[str, str]] = {".ubj": "xgboost-ubj", ".json": "xgboost-json"}
    modules = ("xgboost",)
    packages = ("xgboost",)

    def accepts(self, obj: Any) -> bool:
        """A Booster or a fitted wrapper (anything of the xgboost package with ``get_booster``)."""
        return super().accepts(obj) and (hasattr(obj, "get_booster") or hasattr(obj, "save_raw"))

    def format_of(self, path: Path) -> str | None:
        """By the suffix, else by the first bytes (MLflow writes ``model.xgb``): JSON text or UBJSON."""
        found = self.formats.get(path.suffix.lower())
        if found is None and path.is_file():
            with path.open("rb") as fh:
                head = fh.read(64).lstrip()
            if head[:1] == b"{":
                found = "xgboost-json" if head[1:].lstrip()[:1] in (b'"', b"}") else "xgboost-ubj"
        return found

    def save(self, model: Any, out: Path) -> Stored:
        """Write the Booster as UBJ, keeping its training parameters; a wrapper's classes to the manifest."""
        self.library_module()
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        config = json.loads(booster.save_config())["learner"]["gradient_booster"]
        train = config.get("gbtree", config).get("tree_train_param", {})
        kept = {k: train[k] for k in TRAIN_PARAMS if k in train}
        copy = booster.copy()
        copy.set_attr(**{PARAMS_ATTR: json.dumps(kept) if kept else None})
        dest = out / "model.ubj"
        dest.write_bytes(bytes(copy.save_raw(raw_format="ubj")))
        classes = getattr(model, "classes_", None) if hasattr(model, "get_booster") else None
        labels = tuple(c.item() if isinstance(c, np.generic) else c for c in classes) if classes is not None else None
        return Stored(dest, "xgboost-ubj", classes=labels)

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Check the file is a complete XGBoost model of its format (nothing of it runs)."""
        check_document(path.read_bytes(), fmt, origin)
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Check the bytes, then ``Booster().load_model``; classes from the manifest or the objective."""
        xgb = self.library_module()
        fmt = component.format or "xgboost-ubj"
        doc = check_document(data, fmt, origin)
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data))
        except xgb.core.XGBoostError as exc:
            raise not_a_model(origin, LABEL, str(exc).strip().splitlines()[0]) from exc
        booster.set_param({"nthread": model_threads()})  # XGBoost's default, every core, costs 1-row latency
        learner = doc["learner"]
        objective = str(learner.get("objective", {}).get("name", ""))
        classes: Any = component.classes
        if classes is None and objective.startswith("binary:"):
            classes = [0, 1]
        elif classes is None and objective.startswith("multi:"):
            classes = list(range(_int(learner.get("learner_model_param", {}).get("num_class"))))
        return XGBoostScorer(booster, classes, objective)


def check_document(data: bytes, fmt: str, origin: str) -> dict[str, Any]:
    """Parse an XGBoost model file (bounded) and check its trees; return the document.

    Raises:
        InvalidInput: The bytes are not a complete, consistent XGBoost model.
    """
    try:
        doc = json.loads(data) if fmt == "xgboost-json" else read_ubjson(data)
    except (UBJSONError, ValueError, RecursionError) as exc:
        kind = "JSON" if fmt == "xgboost-json" else "UBJSON"
        raise not_a_model(origin, LABEL, f"not complete {kind} ({exc})") from exc
    try:
        problem = _document_problem(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problem = f"it lacks the model's {exc} field" if isinstance(exc, KeyError) else f"malformed ({exc})"
    if problem:
        raise not_a_model(origin, LABEL, problem)
    return doc  # type: ignore[no-any-return]


def _document_problem(doc: Any) -> str:
    if not isinstance(doc, dict) or not isinstance(doc.get("learner"), dict) or "version" not in doc:
        return "it holds no XGBoost learner (is it another kind of file?)"
    learner = doc["learner"]
    params = learner["learner_model_param"]
    n_features = _int(params["num_feature"], -1)
    n_outputs = max(_int(params.get("num_class")), _int(params.get("num_target", 1)), 1)
    if n_features < 0:
        return "num_feature is not a count"
    for key in ("feature_names", "feature_types"):
        names = learner.get(key) or []
        if len(names) not in (0, n_features) or not all(isinstance(n, str) for n in names):
            return f"{key} does not list its {n_features} features"
    booster = learner["gradient_booster"]
    if booster["name"] == "gblinear":
        weights = booster["model"]["weights"]
        return "" if len(weights) == (n_features + 1) * n_outputs else "gblinear weights of the wrong length"
    model = (booster["gbtree"] if booster["name"] == "dart" else booster)["model"]
    trees = model["trees"]
    if _int(model["gbtree_model_param"]["num_trees"], -1) != len(trees):
        return "num_trees does not match the trees it holds"
    info = np.asarray(model["tree_info"], dtype="int64")
    if len(info) != len(trees) or ((info < 0) | (info >= n_outputs)).any():
        return "tree_info does not fit the trees"
    for i, tree in enumerate(trees):
        problem = _tree_problem(tree, n_features)
        if problem:
            return f"tree {i}: {problem}"
    return _cats_problem(model.get("cats"), n_features)


def _cats_problem(cats: Any, n_features: int) -> str:
    """Check the categories XGBoost recodes inputs with: per feature, a permutation of its categories."""
    if not cats or not cats.get("enc"):
        return ""
    encodings, segments = cats["enc"], np.asarray(cats["feature_segments"], dtype="int64")
    order = np.asarray(cats["sorted_idx"], dtype="int64")
    if len(encodings) != n_features or len(segments) != n_features + 1 or segments[0] != 0:
        return "category arrays that do not fit the features"
    if (np.diff(segments) < 0).any() or segments[-1] != len(order):
        return "category segments out of order"
    for f, enc in enumerate(encodings):
        offsets = np.asarray(enc.get("offsets", []), dtype="int64")
        n_values = len(enc.get("values", []))
        if "offsets" in enc and len(offsets):
            if offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != n_values:
                return f"category text offsets of feature {f} out of order"
            count = len(offsets) - 1
        else:
            count = n_values
        own = order[segments[f] : segments[f + 1]]
        if len(own) != count or not np.array_equal(np.sort(own), np.arange(count)):
            return f"category order of feature {f} is not a permutation of its categories"
    return ""


def _tree_problem(tree: dict[str, Any], n_features: int) -> str:
    n = _int(tree["tree_param"]["num_nodes"], -1)
    arrays = {
        key: np.asarray(tree[key])
        for key in ("left_children", "right_children", "parents", "split_indices", "split_conditions", "default_left")
    }
    if n < 1 or any(a.ndim != 1 or len(a) != n for a in arrays.values()):
        return "node arrays of inconsistent length"
    if "split_type" in tree and len(tree["split_type"]) != n:
        return "node arrays of inconsistent length"
    left, right = arrays["left_children"].astype("int64"), arrays["right_children"].astype("int64")
    feature = arrays["split_indices"].astype("int64")
    inner = left != -1
    index = np.arange(n)
    if ((right == -1) != ~inner).any():
        return "a node with one child"
    if (
        (left[inner] <= index[inner]).any()
        or (right[inner] <= index[inner]).any()
        or (left >= n).any()
        or (right >= n).any()
    ):
        return "a child index outside the tree or before its parent"
    if ((feature[inner] < 0) | (feature[inner] >= n_features)).any():
        return "a split on a feature the model does not have"
    weights = len(tree["base_weights"])
    if weights < n:
        return "fewer leaf weights than nodes"
    categories, nodes = len(tree.get("categories", [])), np.asarray(tree.get("categories_nodes", []), dtype="int64")
    segments = np.asarray(tree.get("categories_segments", []), dtype="int64")
    sizes = np.asarray(tree.get("categories_sizes", []), dtype="int64")
    if len(segments) != len(nodes) or len(sizes) != len(nodes):
        return "categorical split arrays of inconsistent length"
    if ((nodes < 0) | (nodes >= n) | (segments < 0) | (sizes < 0) | (segments + sizes > categories)).any():
        return "a categorical split outside its arrays"
    return ""


FLAVOR = XGBoostFlavor()
