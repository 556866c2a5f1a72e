"""The one shape of a model flavor: store a model in its library's safe format, load it to score.

A flavor (scikit-learn, XGBoost, LightGBM, ...) is one small module defining a
:class:`Flavor` subclass and its :class:`Scorer`. The registry
(:mod:`rollbackkit.bundle.flavors`) picks the flavor from an object's library, a file's
suffix or the manifest's ``format``; nothing else in rollbackkit knows a model library.

Every loader gets bytes that already match the manifest's hash (the caller's duty), and
its library is imported only then (:meth:`Flavor.library_module`), so the core install
stays light and a missing library is one line naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput, MissingLibrary, UntrustedModel

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component, Registration

Label = str | int | float | bool
Param = str | int | float | bool | None


@dataclass(frozen=True)
class Stored:
    """A model file in the bundle, as a flavor wrote or accepted it (recorded in the manifest).

    Attributes:
        file: The file inside the bundle directory.
        format: The serialisation format (a key of the registry's ``FORMATS``).
        trusted_types: Types a skops file needs trusted to load.
        operator_trust: The types among ``trusted_types`` that only the operator vouches for.
        classes: Class labels in the model's output order, when the file does not hold them.
    """

    file: Path
    format: str
    trusted_types: tuple[str, ...] = ()
    operator_trust: tuple[str, ...] = ()
    classes: tuple[Label, ...] | None = None


@dataclass(frozen=True)
class Structure:
    """What ``show`` and ``diff`` say about a model without scoring it.

    Attributes:
        steps: Every estimator inside the model as ``path: Class`` (the model itself first).
        params: Hyper-parameters as JSON scalars.
        size: Counts that tell two models apart at a glance: ``trees``, ``nodes``, ``ops``.
    """

    steps: list[str] | None = None
    params: dict[str, Param] | None = None
    size: dict[str, int] = field(default_factory=dict)


class Scorer(ABC):
    """A loaded model of one flavor: scores a feature frame into the output contract.

    Classifiers give ``prediction`` (the label) and ``proba_<class>`` per class (when the
    model gives probabilities); regressors give ``prediction``.

    Attributes:
        native: The library's own model object (estimator, Booster, session, ...).
        classes: Class labels in the order of the model's probabilities (None: a regressor).
    """

    flavor: ClassVar[str] = ""

    def __init__(self, native: Any, classes: Sequence[Any] | None = None) -> None:
        self.native = native
        self.classes = list(classes) if classes is not None else None

    @abstractmethod
    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Score model features into ``prediction`` (+ ``proba_<class>``), indexed like ``features``."""

    def input_names(self) -> list[str] | None:
        """The feature names the model recorded at training (None: it records none)."""
        return None

    def input_names_as(self, columns: Sequence[str]) -> list[str] | None:
        """The recorded feature names, spelled as in ``columns`` where the library respelled
        them at training (LightGBM writes spaces as ``_``); :meth:`input_names` by default."""
        return self.input_names()

    def n_inputs(self) -> int | None:
        """How many features the model takes (None: unknown)."""
        names = self.input_names()
        return len(names) if names is not None else None

    def structure(self) -> Structure:
        """Steps, hyper-parameters and size of the model (for ``show`` and ``diff``)."""
        return Structure()

    def libraries(self) -> tuple[str, ...]:
        """Import names of libraries this model uses beyond its flavor's ``packages`` (recorded at register)."""
        return ()

    @property
    def type_name(self) -> str:
        """The native model's qualified class name."""
        return qualified(self.native)


class Flavor(ABC):
    """How one model library's models are stored, checked and loaded.

    Class attributes:
        name: The flavor's name (``sklearn``, ``xgboost``, ...).
        label: How messages name the library.
        library: The module to import (None: no library beyond the core install).
        extra: The pip extra that installs the library (``rollbackkit[extra]``).
        formats: File suffix -> format, for model files registered by path.
        directory_format: The format of a model registered as a directory (None: files only).
        modules: Top-level modules of the objects this flavor stores.
        packages: Import names of the libraries whose versions the stored model depends on
            (recorded at register, compared with what runs at load).
        safe: False for formats that run code when loaded (pickle): they need ``--unsafe``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    library: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    formats: ClassVar[dict[str, str]] = {}
    directory_format: ClassVar[str | None] = None
    modules: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[tuple[str, ...]] = ()
    safe: ClassVar[bool] = True

    def accepts(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this flavor's library (judged by its classes' modules)."""
        return any(klass.__module__.split(".")[0] in self.modules for klass in type(obj).__mro__)

    def library_module(self, module: str | None = None) -> ModuleType:
        """Import the flavor's library (or ``module``, another one its extra installs), or fail
        with one line naming the extra to install."""
        name = module or self.library
        assert name is not None, f"{self.name} needs no library"
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            extra = f"pip install 'rollbackkit[{self.extra}]'" if self.extra else f"pip install {name}"
            raise MissingLibrary(
                f"This model is a {self.label} model, and {name} is not installed here ({exc}).",
                f"Install it: {extra}.",
            ) from exc

    def format_of(self, path: Path) -> str | None:
        """The format of a model file by its suffix (the only format when the flavor has one)."""
        found = self.formats.get(path.suffix.lower())
        if found is None and len(set(self.formats.values())) == 1:
            found = next(iter(self.formats.values()))
        return found

    def copy_in(self, path: Path, out: Path, fmt: str) -> Path:
        """Copy a model file being registered into the bundle directory ``out``; return the copy."""
        suffix = next(s for s, f in self.formats.items() if f == fmt)
        dest = out / f"model{suffix}"
        shutil.copyfile(path, dest)
        return dest

    @abstractmethod
    def save(self, model: Any, out: Path) -> Stored:
        """Write an in-memory model into directory ``out`` in the library's safe format."""

    @abstractmethod
    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Check a model file being registered (the copy that gets hashed) without running its code.

        Args:
            path: The copy inside the bundle being built.
            fmt: Its format (from the suffix or ``--flavor``).
            origin: How messages name the file (the path the user gave).
            trust: Types the operator trusts explicitly (``--trust``).
            unsafe: The operator allows formats that run code when loaded (``--unsafe``).

        Raises:
            InvalidInput: The file is not a readable model of this flavor.
            UntrustedModel: It needs what the operator did not allow.
        """

    @abstractmethod
    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Deserialise verified model bytes into a scorer.

        Raises:
            InvalidInput: The bytes are not a model of this flavor (one line naming ``origin``).
            MissingLibrary: The library is not installed.
        """

    def check_trust(self, component: Component, registration: Registration, where: str) -> None:
        """Refuse, before a byte is read, a stored model that needs what nobody trusted at register.

        Raises:
            UntrustedModel: The format runs code when loaded and was registered without ``--unsafe``.
        """
        if not self.safe and not registration.unsafe:
            raise UntrustedModel(
                f"{where}: the model is a {component.format} file registered without --unsafe; "
                "refusing to load it (loading runs any code it holds).",
                "Re-register it with --unsafe if you trust the file, or save the model in a safe format.",
            )


THREADS_VARIABLE = "ROLLBACKKIT_MODEL_THREADS"


def model_threads() -> int:
    """Threads one model may use per predict call: ``ROLLBACKKIT_MODEL_THREADS`` (default 1).

    Passed to every library that runs threads (XGBoost, LightGBM, CatBoost, onnxruntime):
    their own defaults take every core, which a server scoring one request at a time per
    slot, next to its warm slot, pays for in contention. Anything but a positive integer is 1.
    """
    try:
        return max(1, int(os.environ.get(THREADS_VARIABLE, "1")))
    except ValueError:
        return 1


def target_labels(classes: Sequence[Any] | None, target: pd.Series) -> list[Any] | None:
    """The target's labels as the classes of a model that encoded them as ``0..C-1``
    (None: keep the model's classes).

    ONNX has no boolean labels and a graph without labels (a network's probabilities)
    numbers its classes; XGBoost encodes booleans as 0/1. When the model's classes are
    exactly the integers ``0..C-1`` and the target holds ``C`` distinct labels of another
    kind (booleans, strings, other numbers), class ``i`` is the ``i``-th label in sorted
    order: how labels are encoded to train such a model (``LabelEncoder``, ``False < True``).
    """
    if not classes or [type(c) for c in classes] != [int] * len(classes) or list(classes) != list(range(len(classes))):
        return None
    values = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(target.dropna())]
    if len(values) != len(classes):
        return None
    try:
        labels = sorted(values)
    except TypeError:  # labels of mixed kinds: no order to map
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels) and labels == list(classes):
        return None  # the numbers it was trained on (0.0, 1.0 read from a file with holes included)
    return labels


def qualified(obj: Any) -> str:
    """``module.Class`` of an object."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def output_from_proba(
    proba: Any, classes: Sequence[Any], index: pd.Index, prediction: Any | None = None
) -> pd.DataFrame:
    """The output frame of a classifier from its class probabilities (rows x classes).

    A one-column (or flat) array is the positive-class probability of a binary model.
    ``prediction``: the labels the model itself gives (a graph's label output, a Python
    model's ``predict``), when they are not simply the most probable class.
    """
    values = np.asarray(proba, dtype="float64")
    if values.ndim == 1 or values.shape[1] == 1:
        positive = values.reshape(-1)
        values = np.column_stack([1.0 - positive, positive])
    if values.shape[1] != len(classes):
        raise InvalidInput(
            f"The model gives {values.shape[1]} class probabilities but records {len(classes)} classes.",
            "Register the model with its classes in the order of its probabilities.",
        )
    if prediction is None:
        prediction = _label_array(tuple((type(c), c) for c in classes))[values.argmax(axis=1)]
    columns = {"prediction": prediction}
    columns.update((f"proba_{cls}", values[:, i]) for i, cls in enumerate(classes))
    return pd.DataFrame(columns, index=index)  # one constructor: a column set per class costs 0.2 ms a request


@lru_cache(maxsize=256)
def _label_array(typed: tuple[tuple[type, Any], ...]) -> np.ndarray:
    """The classes as an array of their Python types (keyed with the types: ``True == 1``)."""
    labels = np.array(pd.Series([label for _, label in typed]).infer_objects().to_numpy())
    labels.setflags(write=False)  # shared between calls; indexing it gives fresh arrays
    return labels


def output_from_values(values: Any, index: pd.Index) -> pd.DataFrame:
    """The output frame of a regressor from its predictions."""
    return pd.DataFrame({"prediction": np.asarray(values).reshape(len(index), -1)[:, 0]}, index=index)


def not_a_model(origin: str, label: str, exc: BaseException | str) -> InvalidInput:
    """The one-line error for a file that is not a readable model of a flavor."""
    from rollbackkit.bundle.artifacts import describe_error

    detail = exc if isinstance(exc, str) else describe_error(exc)
    return InvalidInput(
        f"{origin} is not a readable {label} model: {detail}.",
        f"Save it again with {label}'s own save call, or pass --flavor if it is another kind of model.",
    )
