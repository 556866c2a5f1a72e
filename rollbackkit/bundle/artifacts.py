"""Model and preprocessing artifacts: save safely, load only what the manifest allows.

The trust model, per format (README "Security"):

- **skops**: a file may need skops' own default types plus the reviewed classes in
  ``REVIEWED_TYPES``; any other type must be named with ``--trust TYPE`` at register. The
  manifest records the types the model needs (``trusted_types``) and which of them the
  operator trusted by hand (``registration.trust``); a load trusts exactly those, and
  refuses a manifest whose types are in neither list. Whole package prefixes and functions
  are never trusted by default: numpy, scipy and scikit-learn contain functions that
  execute code, and a skops reduce node calls whatever callable it names.
- **joblib/pickle**: unpickling runs code, so it needs ``--unsafe`` at register (recorded
  as ``registration.unsafe``); without it the file is refused before a byte is unpickled.
- Every artifact is deserialised only after its bytes match the manifest's hash (the
  caller's duty, see ``Registry.load``); at register, from the copy that is hashed.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput, InvalidPath, UntrustedModel

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Manifest

MODEL_SUFFIXES = {".skops": "skops", ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
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
UNSAFE_FORMATS = frozenset({"joblib", "pickle"})
# What user preprocessing code may raise: sys.exit() or a stray KeyboardInterrupt must end
# as one error naming the file, never as a silent exit 0 of register.
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt)
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
Preprocess = Callable[[pd.DataFrame], pd.DataFrame]


def validate_trust(trust: tuple[str, ...]) -> tuple[str, ...]:
    """Check that each ``--trust`` value is one fully qualified name (no prefix, no pattern)."""
    for name in trust:
        if not _TYPE_NAME.fullmatch(name):
            raise InvalidInput(
                f"--trust {name!r} is not a fully qualified type name.",
                "Name one type per --trust, as the refusal listed it, e.g. mypackage.module.MyEstimator.",
            )
    return tuple(sorted(set(trust)))


def beyond_review(needed: tuple[str, ...]) -> tuple[str, ...]:
    """The types of ``needed`` that only an operator's explicit trust can allow."""
    return tuple(t for t in needed if t not in REVIEWED_TYPES)


def check_model_trust(manifest: Manifest, where: str) -> None:
    """Refuse a manifest whose model needs what nobody trusted (before any byte is read).

    Raises:
        UntrustedModel: A skops type is neither reviewed nor trusted at register, or a
            joblib/pickle model was registered without ``--unsafe``.
    """
    comp = manifest.components["model"]
    reg = manifest.registration
    if (comp.format or "skops") in UNSAFE_FORMATS:
        if not reg.unsafe:
            raise UntrustedModel(
                f"{where}: the model is a {comp.format} file registered without --unsafe; refusing to unpickle it.",
                "Re-register it with --unsafe if you trust the file, or save the model with skops.",
            )
        return
    unknown = [t for t in beyond_review(comp.trusted_types) if t not in reg.trust]
    if unknown:
        raise UntrustedModel(
            f"{where}: the model needs types nobody trusted at register: {', '.join(unknown)}.",
            "Inspect the model file, then re-register it with --trust TYPE for each.",
        )


def save_skops(model: Any, dest: Path) -> tuple[str, ...]:
    """Save ``model`` with skops; return the types it will need trusted to load.

    The object is the caller's own, and skops writes a constructor call only for a class
    of an object it holds, so the types it needs beyond the reviewed ones are trusted as
    the caller's (recorded as the registration's ``trust`` and shown by ``show``).
    """
    import skops.io as sio

    if not hasattr(model, "predict"):
        raise InvalidInput(
            f"The model object ({type(model).__name__}) has no predict() method.",
            "Pass a fitted scikit-learn estimator or pipeline.",
        )
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
    return needed


def model_format(path: Path) -> str:
    """The serialisation format implied by a model file's suffix."""
    fmt = MODEL_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"{path} is not a model file rollbackkit can read.",
            "Use a .skops file (recommended), or .joblib / .pkl with --unsafe.",
        )
    return fmt


def read_user_model(
    path: Path, trust: tuple[str, ...] = (), *, unsafe: bool = False, origin: str = ""
) -> tuple[Any, str, tuple[str, ...]]:
    """Load a model file being registered; return (model, format, types it needs trusted).

    ``path`` is the copy that gets hashed into the bundle, so what is loaded is what is
    stored. A .skops file needing types beyond skops' defaults and ``REVIEWED_TYPES`` is
    refused unless each is in ``trust``; a joblib/pickle file is refused unless ``unsafe``.
    Both refusals happen before anything is deserialised.

    Args:
        path: The model file.
        trust: Types the operator trusts explicitly (``--trust``).
        unsafe: The operator allows unpickling (``--unsafe``).
        origin: How to name the file in messages (default: ``path``).
    """
    where = origin or str(path)
    if not path.is_file():
        raise InvalidPath(f"Model file {where} does not exist.", "Check the --model path.")
    fmt = model_format(Path(where))
    if fmt in UNSAFE_FORMATS and not unsafe:
        raise UntrustedModel(
            f"{where} is a {fmt} file: loading it runs any code it holds, so it is not loaded without --unsafe.",
            "Pass --unsafe if you trust the file (show will flag the version), or save the model with skops.",
        )
    data = path.read_bytes()
    needed: tuple[str, ...] = ()
    if fmt == "skops":
        import skops.io as sio

        try:
            needed = tuple(sorted(sio.get_untrusted_types(data=data)))
        except Exception as exc:
            raise InvalidInput(
                f"{where} is not a readable skops file: {type(exc).__name__}: {exc}.",
                "Re-save the model with skops.io.dump.",
            ) from exc
        unknown = [t for t in beyond_review(needed) if t not in trust]
        if unknown:
            raise UntrustedModel(
                f"{where} needs types that are not trusted by default: {', '.join(unknown)}.",
                "Inspect them, then pass each with --trust TYPE if you trust this file.",
            )
    model = load_model_bytes(data, fmt, needed, origin=where)
    if not hasattr(model, "predict"):
        raise InvalidInput(
            f"{where} does not hold a model (no predict()).", "Pass a fitted scikit-learn estimator or pipeline."
        )
    return model, fmt, needed


def load_model_bytes(data: bytes, fmt: str, trusted_types: tuple[str, ...], origin: str = "bundle") -> Any:
    """Deserialize verified model bytes; skops trusts exactly ``trusted_types``.

    Callers decide first whether the format may be loaded at all (:func:`check_model_trust`,
    :func:`read_user_model`): a joblib/pickle file runs the code it holds here.
    """
    try:
        if fmt == "skops":
            import skops.io as sio

            model = sio.loads(data, trusted=list(trusted_types))
            check_tree_arrays(model, origin)
            return model
        import joblib

        return joblib.load(io.BytesIO(data))
    except USER_CODE_ERRORS as exc:
        raise InvalidInput(
            f"The model in {origin} cannot be loaded: {describe_error(exc)}.",
            "Check the file and the scikit-learn version it was saved with.",
        ) from exc


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


def load_preprocess(path: Path, where: str = "") -> Preprocess:
    """Import ``preprocess(frame) -> frame`` from a Python file (already hash-verified).

    Whatever the import raises, ``sys.exit()`` included, becomes one error naming the file
    (``where``, default ``path``).
    """
    where = where or str(path)
    try:  # the bundle stores the code as text: refuse what a load could not decode
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}).", "Save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise InvalidPath(f"{where} cannot be read: {exc.strerror}.", "Check the --preprocess path.") from exc
    module_name = f"_rollbackkit_preprocess_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{where} is not a Python module.", "Pass a .py file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except USER_CODE_ERRORS as exc:
        raise InvalidInput(f"Importing {where} failed: {describe_error(exc)}.", "Fix the preprocessing code.") from exc
    finally:
        sys.modules.pop(module_name, None)
    func = getattr(module, "preprocess", None)
    if not callable(func):
        raise InvalidInput(
            f"{where} defines no preprocess(frame) function.",
            "Add 'def preprocess(frame: pd.DataFrame) -> pd.DataFrame'.",
        )
    return func  # type: ignore[no-any-return]


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line (at most ~300 characters), for errors from user code or files."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def identity(frame: pd.DataFrame) -> pd.DataFrame:
    """The default preprocessing: the frame as it is (the model may be a Pipeline)."""
    return frame
