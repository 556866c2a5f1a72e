"""Python models: a directory with a ``model.py`` and its artifact files, for any other model.

Like an MLflow pyfunc, but nothing is unpickled and the code is part of the hashed bundle.
``rollbackkit register NAME --model DIR`` stores ``DIR`` as one archive (``model.zip``:
entries sorted, fixed timestamps, stored uncompressed, so the same directory always gives
the same bytes, hash and bundle id); a ``.zip`` of such a directory is accepted too and
rewritten the same way. A load runs ``model.py`` from the verified archive bytes in a fresh
module, with the artifacts handed over in memory (nothing is extracted to disk).

The contract of ``model.py`` (two functions; the rest optional)::

    def load(artifacts: Mapping[str, bytes]) -> Any:
        # every other file of DIR, by its path relative to DIR ("weights.npy", "vocab/en.txt")
    def predict(state, frame: pd.DataFrame) -> array-like | pd.DataFrame:
        # one answer per row: a class label (classifier) or a number (regressor);
        # a DataFrame gives its "prediction" column (or its only column)
    def predict_proba(state, frame) -> array-like   # optional: rows x len(CLASSES)
    CLASSES = ["no", "yes"]    # a classifier's labels, in predict_proba's column order
    FEATURES = ["age", ...]    # optional: the input columns the model takes, in order
    PARAMS = {"C": 1.0}        # optional: JSON scalars that show and diff report

``frame`` holds the model features (after the bundle's ``preprocess.py``, if any). Files
named ``__pycache__``, ``*.pyc`` and hidden names (``.git``, ``.DS_Store``) are left out;
other names must be plain (letters, digits, ``._+-``), at most 4 folders deep, 1,000
files and 256 MiB in all (:mod:`~rollbackkit.bundle.flavors.python_archive`); a symlink is
followed only to a file inside ``DIR``. Other ``.py`` files are artifacts (bytes), not importable modules.
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, describe_error
from rollbackkit.bundle.flavors.base import Flavor, Param, Scorer, Stored, Structure, output_from_proba
from rollbackkit.bundle.flavors.python_archive import (
    archive_files,
    directory_files,
    pack,
    read_archive,
)
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component

ENTRY = "model.py"
ARCHIVE = "model.zip"
PYTHON_FORMAT = "python-model"
_HINT = "Fix model.py (see rollbackkit.bundle.flavors.python_model for the contract) and register again."


@dataclass(frozen=True)
class PythonModel:
    """A loaded ``model.py``: its module, the state ``load()`` returned and its artifacts' sizes.

    Attributes:
        module: The module ``model.py`` ran in.
        state: What ``load(artifacts)`` returned.
        sizes: Artifact path -> size in bytes.
        digests: ``model.py`` -> its full ``sha256:``; each artifact -> ``sha256:`` (first 12 hex digits).
    """

    module: types.ModuleType
    state: Any
    sizes: dict[str, int]
    digests: dict[str, str]

    def predict(self, frame: pd.DataFrame) -> Any:
        """``model.predict(state, frame)``."""
        return self.module.predict(self.state, frame)

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        """``model.predict_proba(state, frame)`` (AttributeError when model.py defines none)."""
        return self.module.predict_proba(self.state, frame)

    def entry_points(self) -> list[str]:
        """The contract's names model.py defines."""
        return [
            n for n in ("load", "predict", "predict_proba", "CLASSES", "FEATURES", "PARAMS") if _has(self.module, n)
        ]


class PythonScorer(Scorer):
    """Scores through ``model.py``'s ``predict`` (and ``predict_proba``), checking what they return."""

    flavor = "python"

    def __init__(self, native: PythonModel, classes: list[Any] | None, origin: str) -> None:
        super().__init__(native, classes)
        self.origin = origin

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """``prediction`` (+ ``proba_<class>``) for each row of ``features``."""
        model: PythonModel = self.native
        values = self._column(_call(model.predict, features, self.origin, "predict"), len(features), "predict")
        if self.classes is not None:
            values = self._labels(values)
        if self.classes is not None and _has(model.module, "predict_proba"):
            proba = np.asarray(_call(model.predict_proba, features, self.origin, "predict_proba"), dtype="float64")
            if proba.ndim != 2 or proba.shape != (len(features), len(self.classes)):
                raise self._bad(
                    "predict_proba", f"an array of shape {proba.shape}, not ({len(features)}, {len(self.classes)})"
                )
            return output_from_proba(proba, self.classes, features.index, prediction=values)  # one frame
        return pd.DataFrame({"prediction": values}, index=features.index)

    def _column(self, result: Any, rows: int, entry: str) -> np.ndarray:
        if isinstance(result, pd.DataFrame):
            if "prediction" not in result.columns and result.shape[1] != 1:
                raise self._bad(entry, f"a DataFrame with columns {list(result.columns)[:5]} and no 'prediction'")
            result = result["prediction"] if "prediction" in result.columns else result.iloc[:, 0]
        values = np.asarray(result.to_numpy() if isinstance(result, pd.Series) else result)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or len(values) != rows:
            raise self._bad(
                entry, f"{'shape ' + str(values.shape) if values.ndim != 1 else len(values)} values for {rows} rows"
            )
        return values

    def _labels(self, values: np.ndarray) -> np.ndarray:
        """Predicted labels as the declared CLASSES' own objects (their Python types kept)."""
        assert self.classes is not None
        by_key = {_key(c): c for c in self.classes}
        out = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            found = by_key.get(_key(value.item() if isinstance(value, np.generic) else value), _MISSING)
            if found is _MISSING:
                raise self._bad("predict", f"the label {value!r}, which is not in CLASSES {self.classes[:10]}")
            out[i] = found
        return pd.Series(out).infer_objects().to_numpy()

    def _bad(self, entry: str, what: str) -> InvalidInput:
        return InvalidInput(f"{self.origin}: {ENTRY} {entry}() returned {what}.", "Return one answer per row. " + _HINT)

    @property
    def type_name(self) -> str:
        """``model.py``: the model is its own code (not a library class)."""
        return ENTRY

    def input_names(self) -> list[str] | None:
        """``FEATURES`` when model.py declares it."""
        names = getattr(self.native.module, "FEATURES", None)
        return [str(n) for n in names] if names is not None else None

    def libraries(self) -> tuple[str, ...]:
        """The third-party packages model.py imports at its top level (their versions are recorded)."""
        found = {
            (value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", "") or "").split(
                "."
            )[0]
            for value in vars(self.native.module).values()
            if isinstance(value, types.ModuleType) or callable(value)
        }
        return tuple(
            sorted(
                n
                for n in found
                if n
                and n not in sys.stdlib_module_names
                and n != "builtins"
                and n in sys.modules
                and not n.startswith("rollbackkit")
            )
        )

    def structure(self) -> Structure:
        """The entry points found, model.py's and each artifact's hash and size, ``PARAMS``; size in files."""
        model: PythonModel = self.native
        params: dict[str, Param] = {ENTRY: model.digests[ENTRY]}
        for name, size in sorted(model.sizes.items()):
            params[name] = f"{size} B {model.digests[name]}"
        declared = getattr(model.module, "PARAMS", None) or {}
        params.update({str(k): v for k, v in declared.items() if v is None or isinstance(v, str | int | float | bool)})
        return Structure(
            steps=[f"{ENTRY}: {', '.join(model.entry_points())}"], params=params, size={"files": 1 + len(model.sizes)}
        )


_MISSING = object()


def _key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__ if isinstance(value, bool) else "x", value)


def _has(module: types.ModuleType, name: str) -> bool:
    return name in module.__dict__


def _call(func: Any, features: pd.DataFrame, origin: str, entry: str) -> Any:
    try:
        return func(features.copy())
    except USER_CODE_ERRORS as exc:  # sys.exit() in model code must not end a server or a CLI
        raise InvalidInput(f"{origin}: {ENTRY} {entry}() failed: {describe_error(exc)}.", _HINT) from exc


class PythonFlavor(Flavor):
    """A ``model.py`` with its artifacts, stored as one deterministic archive."""

    name = "python"
    label = "Python"
    formats: ClassVar[dict[str, str]] = {".zip": PYTHON_FORMAT}
    directory_format = PYTHON_FORMAT
    packages = ("numpy", "pandas")

    def accepts(self, obj: Any) -> bool:
        """Never chosen for an in-memory object: register the directory."""
        return False

    def save(self, model: Any, out: Path) -> Stored:
        """Refused: a Python model is registered as a directory holding its model.py."""
        raise InvalidInput(
            "A Python model is registered as a directory, not an object.", "Pass --model DIR with DIR/model.py."
        )

    def copy_in(self, path: Path, out: Path, fmt: str) -> Path:
        """Write ``path`` (a directory, or a .zip of one) as the bundle's deterministic ``model.zip``."""
        files = directory_files(path) if path.is_dir() else read_archive(path)
        dest = out / ARCHIVE
        dest.write_bytes(pack(files))
        return dest

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Check the archive holds a UTF-8 model.py (it is run by :meth:`load`, right after)."""
        _source(archive_files(path.read_bytes(), origin), origin)
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Run model.py from the archive in a fresh module, ``load(artifacts)``, check the contract."""
        files = archive_files(data, origin)
        source = _source(files, origin)
        where = f"{origin.rstrip('/')}/{ENTRY}"
        module = types.ModuleType("rollbackkit_bundle_model")
        try:
            exec(compile(source, f"<{where}>", "exec"), module.__dict__)
        except USER_CODE_ERRORS as exc:
            raise InvalidInput(f"{where} fails to import: {describe_error(exc)}.", _HINT) from exc
        missing = [n for n in ("load", "predict") if not callable(module.__dict__.get(n))]
        if missing:
            raise InvalidInput(f"{where} defines no {' and no '.join(f'{n}()' for n in missing)}.", _HINT)
        classes = _declared(module, "CLASSES", where)
        _declared(module, "FEATURES", where)
        if _has(module, "predict_proba") and classes is None:
            raise InvalidInput(f"{where} defines predict_proba() but no CLASSES.", "Add CLASSES = [...] in its order.")
        artifacts = {name: body for name, body in files.items() if name != ENTRY}
        try:
            state = module.load(types.MappingProxyType(artifacts))
        except USER_CODE_ERRORS as exc:
            raise InvalidInput(f"{where} load() failed: {describe_error(exc)}.", _HINT) from exc
        digests = {name: _digest(body) for name, body in files.items()}
        digests[ENTRY] = code_digest(files[ENTRY])
        sizes = {name: len(body) for name, body in artifacts.items()}
        return PythonScorer(PythonModel(module, state, sizes, digests), classes, where)


def _declared(module: types.ModuleType, name: str, where: str) -> list[Any] | None:
    value = module.__dict__.get(name)
    if value is None:
        return None
    items = list(value) if isinstance(value, list | tuple) else None
    if not items or not all(isinstance(v, str | int | float | bool) and not isinstance(v, np.generic) for v in items):
        raise InvalidInput(f"{where}: {name} must be a non-empty list of str, int, float or bool.", _HINT)
    if len({_key(v) for v in items}) != len(items):
        raise InvalidInput(f"{where}: {name} lists a value twice.", _HINT)
    return items


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()[:12]


def code_digest(body: bytes) -> str:
    """``sha256:`` and the full hex digest of model.py's bytes (what ``show`` names)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def model_source(data: bytes, origin: str) -> str:
    """The text of model.py in a verified ``model.zip``, read and never run (for ``diff``)."""
    return _source(archive_files(data, origin), origin)


def _source(files: Mapping[str, bytes], origin: str) -> str:
    body = files.get(ENTRY)
    if body is None:
        raise InvalidInput(
            f"{origin} holds no {ENTRY}.", "Put the model's code in model.py at the top of the directory."
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{origin}/{ENTRY} is not UTF-8 text ({exc.reason}).", "Save it as UTF-8.") from exc


FLAVOR = PythonFlavor()
