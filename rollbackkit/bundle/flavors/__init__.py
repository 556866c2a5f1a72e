"""Model flavors: one small module per model library, behind one registry of one shape.

The registry maps each flavor's name to its module, imported on first use (papermill's
engines); each module defines ``FLAVOR``, a :class:`~rollbackkit.bundle.flavors.base.Flavor`.
An in-memory object goes to the first flavor that accepts it, most specific first: a
library's scikit-learn wrapper (``XGBClassifier``) is stored in the library's native format,
and scikit-learn (skops) is the fallback for anything else with ``predict()``. A file goes
to the flavor of its suffix, or of ``--flavor``; a stored model to the flavor of its
manifest ``format``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.errors import IntegrityError, InvalidInput, InvalidPath

if TYPE_CHECKING:
    from rollbackkit.bundle.flavors.base import Flavor

# Name -> module, in the order objects are matched (scikit-learn, the fallback, comes last).
_MODULES: dict[str, str] = {
    "xgboost": "rollbackkit.bundle.flavors.xgboost_native",
    "lightgbm": "rollbackkit.bundle.flavors.lightgbm_native",
    "catboost": "rollbackkit.bundle.flavors.catboost_native",
    "onnx": "rollbackkit.bundle.flavors.onnx_runtime",
    "python": "rollbackkit.bundle.flavors.python_model",
    "pickle": "rollbackkit.bundle.flavors.pickled",
    "sklearn": "rollbackkit.bundle.flavors.scikit_learn",
}


def names() -> tuple[str, ...]:
    """Every flavor's name."""
    return tuple(_MODULES)


def object_labels() -> list[str]:
    """The libraries whose in-memory models ``register`` stores: every safe flavor but those
    registered as a directory (a Python model), in match order (scikit-learn last)."""
    return [flavor.label for flavor in map(get, _MODULES) if flavor.safe and flavor.directory_format is None]


def safe_files() -> str:
    """The model files a flavor reads without running their code, for hints:
    ``XGBoost .ubj/.json, ..., scikit-learn .skops``."""
    kinds = []
    for flavor in map(get, _MODULES):
        if flavor.safe:
            where = "/".join(flavor.formats) + (" or a directory with a model.py" if flavor.directory_format else "")
            kinds.append(f"{flavor.label} {where}")
    return ", ".join(kinds)


def get(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        InvalidInput: No flavor has that name.
    """
    module = _MODULES.get(name)
    if module is None:
        raise InvalidInput(f"{name!r} is not a model flavor.", f"Choose one of: {', '.join(_MODULES)}.")
    flavor: Flavor = importlib.import_module(module).FLAVOR
    return flavor


def for_object(model: Any) -> Flavor:
    """The flavor that stores an in-memory model.

    Raises:
        InvalidInput: No flavor accepts it (it has no ``predict()`` and is no library's model).
    """
    for name in _MODULES:
        flavor = get(name)
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(
        f"The model object ({type(model).__name__}) is not a model rollbackkit can store: it has no predict().",
        f"Pass a fitted model ({', '.join(object_labels())}), a model file, or a directory with a model.py.",
    )


def for_file(path: Path, declared: str | None = None) -> tuple[Flavor, str]:
    """The flavor and format of a model file (or directory) being registered.

    Args:
        path: The file the user named.
        declared: ``--flavor``: the flavor the user says it is (None: judge by the suffix).

    Raises:
        InvalidInput: The suffix names no flavor, or does not fit the declared one.
        InvalidPath: A directory is named like a model file.
    """
    flavors = [get(declared)] if declared is not None else [get(name) for name in _MODULES]
    if path.is_dir() and any(path.suffix.lower() in flavor.formats for flavor in flavors):
        raise InvalidPath(f"Model file {path} is not a file.", "Check the --model path.")
    for flavor in flavors:
        fmt = flavor.directory_format if path.is_dir() else flavor.formats.get(path.suffix.lower())
        if fmt is None and declared is not None and not path.is_dir():
            fmt = flavor.format_of(path)
        if fmt is not None:
            return flavor, fmt
    if declared is not None:
        raise InvalidInput(
            f"{path} does not look like a {flavors[0].label} model (suffix {path.suffix or 'none'!r}).",
            f"Use a file ending in {' or '.join(flavors[0].formats)}, or another --flavor.",
        )
    suffixes = sorted({s for flavor in flavors for s in flavor.formats})
    raise InvalidInput(
        f"{path} is not a model file rollbackkit can read (suffix {path.suffix or 'none'!r}).",
        f"Use a file ending in {', '.join(suffixes)}, a directory with a model.py, or name the flavor with --flavor.",
    )


def for_format(fmt: str | None, where: str) -> Flavor:
    """The flavor of a stored model's format (a manifest without one is a skops file).

    Raises:
        IntegrityError: No flavor knows the format (a newer rollbackkit wrote it, or the
            manifest was edited).
    """
    fmt = fmt or "skops"
    for name in _MODULES:
        flavor = get(name)
        if fmt in flavor.formats.values():
            return flavor
    raise IntegrityError(
        f"{where}: the model format {fmt!r} is not one this rollbackkit can load.",
        "Upgrade rollbackkit, or re-register the model in a known format.",
    )


def unsafe_format(fmt: str | None) -> bool:
    """Whether a stored format runs code when loaded (a pickle)."""
    return not for_format(fmt, "manifest").safe
