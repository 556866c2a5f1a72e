"""scikit-learn models, stored with skops (never pickled).

The trust model (README "Security"): a file may need skops' own default types plus the
reviewed classes in ``REVIEWED_TYPES``; any other type must be named with ``--trust TYPE``
at register. The manifest records the types the model needs (``trusted_types``) and which
of them the operator trusted by hand (``registration.trust``); a load trusts exactly
those, and refuses a manifest whose types are in neither list. Whole package prefixes and
functions are never trusted by default: numpy, scipy and scikit-learn contain functions
that execute code, and a skops reduce node calls whatever callable it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, describe_error
from rollbackkit.bundle.flavors.base import Flavor, Param, Scorer, Stored, Structure, qualified
from rollbackkit.errors import InvalidInput, UntrustedModel

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component, Registration

# Classes (never functions, never package prefixes) that fitted scikit-learn estimators
# need beyond skops' defaults, reviewed by hand: each is built from data (arrays, numbers)
# and runs no code it is given. tests/adversarial/test_model_files.py re-checks that every
# name is a class. Tree arrays are data that scikit-learn indexes unchecked:
# check_tree_arrays refuses out-of-range indices at every load; a crafted tree can still
# mispredict, which is why a model file should come from a source you trust.
REVIEWED_TYPES = frozenset(
    {
        "numpy.dtype",  # ColumnTransformer/OrdinalEncoder/KBinsDiscretizer dtypes
        "sklearn.tree._tree.Tree",  # decision trees, forests, gradient boosting
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # HistGradientBoosting
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # MLP
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",  # MLP
        "sklearn.calibration._CalibratedClassifier",  # CalibratedClassifierCV
        "sklearn.calibration._SigmoidCalibration",  # CalibratedClassifierCV
        "sklearn.utils._bunch.Bunch",  # Stacking/Voting named_estimators_
    }
)


# Classifiers whose predict() is, in scikit-learn's own code, ``classes_`` at the argmax of
# predict_proba (single output): score() runs the model once and takes the label from the
# probabilities, instead of traversing a forest twice (predict, then predict_proba).
PREDICT_IS_ARGMAX = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.calibration.CalibratedClassifierCV",
    }
)


def beyond_review(needed: tuple[str, ...]) -> tuple[str, ...]:
    """The types of ``needed`` that only an operator's explicit trust can allow."""
    return tuple(t for t in needed if t not in REVIEWED_TYPES)


class SklearnScorer(Scorer):
    """A scikit-learn estimator or pipeline (or any object with its predict API)."""

    flavor = "sklearn"

    def __init__(self, native: Any) -> None:
        super().__init__(native, getattr(native, "classes_", None))

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """``predict`` plus ``predict_proba`` per class when the estimator has it.

        A ``Pipeline`` transforms once and both calls go to its final step: exactly what
        ``Pipeline.predict``/``predict_proba`` compute, at half the cost.
        """
        model = self.native
        wants_proba = self.classes is not None and hasattr(model, "predict_proba")
        final, inputs = model, features
        steps = getattr(model, "steps", None)
        if wants_proba and isinstance(steps, list) and len(steps) > 1 and hasattr(model, "__getitem__"):
            final, inputs = steps[-1][1], model[:-1].transform(features)
        if not wants_proba or self.classes is None:
            return pd.DataFrame({"prediction": final.predict(inputs)}, index=features.index)
        proba = np.asarray(final.predict_proba(inputs), dtype="float64")
        if qualified(final) in PREDICT_IS_ARGMAX and getattr(final, "n_outputs_", 1) == 1:
            prediction = np.asarray(final.classes_).take(proba.argmax(axis=1), axis=0)  # what predict() computes
        else:
            prediction = final.predict(inputs)
        columns = {"prediction": prediction, **{f"proba_{cls}": proba[:, i] for i, cls in enumerate(self.classes)}}
        return pd.DataFrame(columns, index=features.index)

    def input_names(self) -> list[str] | None:
        """``feature_names_in_`` (set when the estimator was fitted on a DataFrame)."""
        names = getattr(self.native, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def n_inputs(self) -> int | None:
        """``n_features_in_``."""
        n_in = getattr(self.native, "n_features_in_", None)
        return int(n_in) if n_in is not None else None

    def structure(self) -> Structure:
        """Every estimator inside as ``path: Class``, the other parameters, and the tree count."""
        steps, params = model_structure(self.native)
        trees = _count_trees(self.native)
        return Structure(steps=steps, params=params, size={"trees": trees} if trees else {})


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines in skops files."""

    name = "sklearn"
    label = "scikit-learn"
    library = "skops.io"
    formats: ClassVar[dict[str, str]] = {".skops": "skops"}
    modules = ("sklearn",)
    packages = ("sklearn", "skops")

    def accepts(self, obj: Any) -> bool:
        """Any object with ``predict`` that no other flavor claims (the registry asks last)."""
        return hasattr(obj, "predict")

    def save(self, model: Any, out: Path) -> Stored:
        """Save with skops; the types it needs beyond the reviewed ones are the caller's own.

        skops writes a constructor call only for a class of an object it holds, so those
        types are trusted as the caller's (recorded as the registration's ``trust``).
        """
        sio = self.library_module()
        dest = out / "model.skops"
        try:
            sio.dump(model, dest)
        except Exception as exc:  # skops raises many types for unsupported objects
            raise InvalidInput(
                f"The model cannot be saved with skops: {exc}.",
                "Use a scikit-learn estimator, or register a .joblib file with --unsafe.",
            ) from exc
        needed = tuple(sorted(sio.get_untrusted_types(file=dest)))
        try:  # skops writes some objects it cannot read back (pandas.NA as a parameter, for one)
            sio.load(dest, trusted=list(needed))
        except Exception as exc:
            raise InvalidInput(
                f"The model was saved with skops but does not load back: {type(exc).__name__}: {exc}.",
                "Avoid objects skops cannot store, e.g. SimpleImputer(missing_values=pd.NA): convert nullable "
                "columns to NaN before the model (a preprocess.py in the bundle does this), then register again.",
            ) from exc
        return Stored(dest, "skops", trusted_types=needed, operator_trust=beyond_review(needed))

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Refuse a .skops file that needs types beyond skops' defaults, the reviewed ones and ``trust``."""
        sio = self.library_module()
        try:
            needed = tuple(sorted(sio.get_untrusted_types(data=path.read_bytes())))
        except Exception as exc:
            raise InvalidInput(
                f"{origin} is not a readable skops file: {type(exc).__name__}: {exc}.",
                "Re-save the model with skops.io.dump.",
            ) from exc
        unknown = [t for t in beyond_review(needed) if t not in trust]
        if unknown:
            raise UntrustedModel(
                f"{origin} needs types that are not trusted by default: {', '.join(unknown)}.",
                "Inspect them, then pass each with --trust TYPE if you trust this file.",
            )
        return Stored(path, fmt, trusted_types=needed, operator_trust=beyond_review(needed))

    def check_trust(self, component: Component, registration: Registration, where: str) -> None:
        """Refuse a manifest whose skops types are neither reviewed nor trusted at register."""
        unknown = [t for t in beyond_review(component.trusted_types) if t not in registration.trust]
        if unknown:
            raise UntrustedModel(
                f"{where}: the model needs types nobody trusted at register: {', '.join(unknown)}.",
                "Inspect the model file, then re-register it with --trust TYPE for each.",
            )

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Load skops bytes trusting exactly the recorded types; check every tree's arrays."""
        sio = self.library_module()
        try:
            model = sio.loads(data, trusted=list(component.trusted_types))
        except USER_CODE_ERRORS as exc:
            raise InvalidInput(
                f"The model in {origin} cannot be loaded: {describe_error(exc)}.",
                "Check the file and the scikit-learn version it was saved with.",
            ) from exc
        check_tree_arrays(model, origin)
        return scorer_of(model, origin)


def scorer_of(model: Any, origin: str) -> SklearnScorer:
    """A scorer for a deserialised object that must have scikit-learn's predict API."""
    if not hasattr(model, "predict"):
        raise InvalidInput(
            f"{origin} does not hold a model (no predict()).", "Pass a fitted scikit-learn estimator or pipeline."
        )
    return SklearnScorer(model)


FLAVOR = SklearnFlavor()


def check_tree_arrays(model: Any, origin: str) -> None:
    """Refuse tree arrays whose node, feature or bitset indices point outside their arrays.

    scikit-learn's compiled predictors index these arrays unchecked, and a skops file sets
    them freely: a crafted tree would read outside its memory (a crash of the server, not
    a wrong answer). Children must come after their parent, so every walk ends.

    Raises:
        InvalidInput: A tree is malformed.
    """
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    todo: list[tuple[Any, int | None]] = [(model, None)]  # a stack, not recursion: no depth escapes the check
    while todo:
        obj, n_features = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        problem = ""
        if isinstance(obj, Tree):
            problem = _tree_problem(obj, n_features)
        elif isinstance(obj, TreePredictor):
            problem = _predictor_problem(obj, n_features)
        if problem:
            raise InvalidInput(
                f"The model in {origin} holds a malformed tree ({problem}).",
                "Save the model again from its training code; do not register this file.",
            )
        items: Any = ()
        if isinstance(obj, dict):
            items = obj.values()
        elif isinstance(obj, list | tuple):
            items = obj
        elif isinstance(obj, np.ndarray) and obj.dtype == object:
            items = obj.ravel()
        elif type(obj).__module__.startswith("sklearn.") and hasattr(obj, "__dict__"):
            found = getattr(obj, "n_features_in_", None)  # sklearn checks inputs against it at predict
            n_features = found if isinstance(found, int) else n_features
            items = vars(obj).values()
        todo.extend((item, n_features) for item in items)


def _tree_problem(tree: Any, n_features: int | None) -> str:
    n = int(tree.node_count)
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if n < 1 or len(left) != n or len(right) != n or len(feature) != n or tree.value.shape[0] != n:
        return "node arrays of inconsistent length"
    inner = left != -1
    if ((right == -1) != ~inner).any():
        return "a node with one child"
    return _index_problem(
        np.arange(n)[inner], left[inner], right[inner], feature[inner], n, n_features or tree.n_features
    )


def _predictor_problem(predictor: Any, n_features: int | None) -> str:
    nodes = predictor.nodes
    n = len(nodes)
    if n < 1:
        return "no nodes"
    inner = nodes["is_leaf"] == 0
    problem = _index_problem(
        np.arange(n)[inner], nodes["left"][inner], nodes["right"][inner], nodes["feature_idx"][inner], n, n_features
    )
    categorical = inner & (nodes["is_categorical"] != 0)
    if not problem and (nodes["bitset_idx"][categorical] >= len(predictor.raw_left_cat_bitsets)).any():
        problem = "a categorical split without its bitset"
    return problem


def _index_problem(index: Any, left: Any, right: Any, feature: Any, n_nodes: int, n_features: int | None) -> str:
    if ((left <= index) | (right <= index) | (left >= n_nodes) | (right >= n_nodes)).any():
        return "a child index outside the tree or before its parent"
    if (feature < 0).any() or (n_features is not None and (feature >= n_features).any()):
        return "a split on a feature the model does not have"
    return ""


def model_structure(model: Any) -> tuple[list[str] | None, dict[str, Param] | None]:
    """Every estimator inside ``model`` as ``path: Class``, and its other parameters.

    Works on anything with scikit-learn's ``get_params``; returns ``(None, None)`` otherwise.
    Lists of named estimators (``steps``, ``transformers``) are not parameters of their
    own: their estimators appear as steps, a ``ColumnTransformer``'s column lists as
    ``PATH.columns[NAME]``.
    """
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return None, None
    try:
        deep: dict[str, Any] = get_params(deep=True)
    except Exception:  # a third-party estimator with a broken get_params: record the type only
        return None, None
    steps = [type(model).__name__]
    params: dict[str, Param] = {}
    for key, value in deep.items():
        if _is_estimator(value):
            steps.append(f"{key}: {type(value).__name__}")
        elif isinstance(value, list | tuple) and value and all(_is_named_estimator(v) for v in value):
            prefix = key.rsplit("__", 1)[0] + "__" if "__" in key else ""
            for item in value:
                if isinstance(item[1], str):  # "drop" / "passthrough" holds a step's place
                    steps.append(f"{prefix}{item[0]}: {item[1]}")
                if len(item) >= 3:
                    params[f"{key}.columns[{item[0]}]"] = _param_value(item[2])
        else:
            params[key] = _param_value(value)
    return steps, params


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _is_named_estimator(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) >= 2
        and isinstance(value[0], str)
        and (_is_estimator(value[1]) or value[1] in ("drop", "passthrough"))
    )


def _param_value(value: Any, limit: int = 200) -> str | int | float | bool | None:
    """A JSON scalar as is (finite floats only), anything else as short text."""
    if isinstance(value, np.generic):
        value = value.item()
    text: Any
    if value is None or isinstance(value, bool | int | str):
        text = value
    elif isinstance(value, float) and np.isfinite(value):
        return value
    elif isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        text = getattr(value, "__qualname__", repr(value))
    else:
        text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _count_trees(model: Any) -> int:
    """Decision trees inside a fitted forest or boosting model (0 for other estimators)."""
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, BaseDecisionTree):
        return 1
    predictors = getattr(model, "_predictors", None)  # HistGradientBoosting: per iteration, per class
    if predictors:
        return sum(len(p) for p in predictors)
    found = getattr(model, "estimators_", None)
    if found is None:
        last = getattr(model, "steps", None)
        return _count_trees(last[-1][1]) if isinstance(last, list) and last else 0
    items = found if isinstance(found, list) else np.asarray(found, dtype=object).ravel()
    return sum(_count_trees(item) for item in items)
