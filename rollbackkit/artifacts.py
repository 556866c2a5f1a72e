"""Model and preprocessing artifacts: save safely, load only what the manifest allows.

scikit-learn models are saved with skops. Loading a skops file trusts exactly the types
recorded in the manifest at register time (and shown by ``rollbackkit show``); nothing else
is trusted. joblib/pickle files are accepted but flagged, and like every artifact they are
loaded only after their bytes match the manifest's hash (the caller's duty, see
``Registry.load``).
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput, InvalidPath

MODEL_SUFFIXES = {".skops": "skops", ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
# Types a user-supplied .skops file may need without an explicit --trust: fitted
# scikit-learn internals (e.g. sklearn.tree._tree.Tree). Anything else must be named.
AUTO_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
UNSAFE_FORMATS = frozenset({"joblib", "pickle"})
Preprocess = Callable[[pd.DataFrame], pd.DataFrame]


def save_skops(model: Any, dest: Path) -> tuple[str, ...]:
    """Save ``model`` with skops; return the types it will need trusted to load."""
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
            "Use a scikit-learn estimator, or register a .joblib file (flagged as unsafe).",
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
            "Use a .skops file (recommended), or .joblib / .pkl.",
        )
    return fmt


def read_user_model(path: Path, trust: tuple[str, ...] = ()) -> tuple[Any, str, tuple[str, ...]]:
    """Load a model file the user is registering; return (model, format, trusted types).

    A .skops file needing types outside scikit-learn/numpy/scipy is refused unless those
    types are passed in ``trust``.
    """
    if not path.is_file():
        raise InvalidPath(f"Model file {path} does not exist.", "Check the --model path.")
    fmt = model_format(path)
    trusted: tuple[str, ...] = ()
    if fmt == "skops":
        import skops.io as sio

        try:
            needed = tuple(sorted(sio.get_untrusted_types(file=path)))
        except Exception as exc:
            raise InvalidInput(
                f"{path} is not a readable skops file: {exc}.", "Re-save the model with skops.io.dump."
            ) from exc
        unknown = [t for t in needed if not t.startswith(AUTO_TRUSTED_PREFIXES) and t not in trust]
        if unknown:
            raise InvalidInput(
                f"{path} needs types that are not trusted by default: {', '.join(unknown)}.",
                "Inspect them, then pass each with --trust TYPE if you trust this file.",
            )
        trusted = needed
    model = load_model(path, fmt, trusted)
    if not hasattr(model, "predict"):
        raise InvalidInput(
            f"{path} does not hold a model (no predict()).", "Pass a fitted scikit-learn estimator or pipeline."
        )
    return model, fmt, trusted


def load_model(path: Path, fmt: str, trusted_types: tuple[str, ...]) -> Any:
    """Deserialize a model file whose bytes the caller has already verified."""
    return load_model_bytes(path.read_bytes(), fmt, trusted_types, origin=str(path))


def load_model_bytes(data: bytes, fmt: str, trusted_types: tuple[str, ...], origin: str = "bundle") -> Any:
    """Deserialize verified model bytes; skops trusts exactly ``trusted_types``."""
    try:
        if fmt == "skops":
            import skops.io as sio

            return sio.loads(data, trusted=list(trusted_types))
        import joblib

        return joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise InvalidInput(
            f"The model in {origin} cannot be loaded: {exc}.",
            "Check the file and the scikit-learn version it was saved with.",
        ) from exc


def load_preprocess(path: Path) -> Preprocess:
    """Import ``preprocess(frame) -> frame`` from a Python file (already hash-verified)."""
    module_name = f"_rollbackkit_preprocess_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} is not a Python module.", "Pass a .py file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InvalidInput(f"Importing {path} failed: {exc!r}.", "Fix the preprocessing code.") from exc
    finally:
        sys.modules.pop(module_name, None)
    func = getattr(module, "preprocess", None)
    if not callable(func):
        raise InvalidInput(
            f"{path} defines no preprocess(frame) function.",
            "Add 'def preprocess(frame: pd.DataFrame) -> pd.DataFrame'.",
        )
    return func  # type: ignore[no-any-return]


def identity(frame: pd.DataFrame) -> pd.DataFrame:
    """The default preprocessing: the frame as it is (the model may be a Pipeline)."""
    return frame
