"""CatBoost models in CatBoost's native ``.cbm`` format (never pickled).

An in-memory ``CatBoostClassifier``, ``CatBoostRegressor`` or ``CatBoost`` is saved with
``save_model`` (format ``cbm``); a ``.cbm`` file is copied as is. Loading reads the
verified bytes (``load_model(blob=...)``) into the class its loss function calls for:
``CatBoostClassifier`` for classification losses (labels and their type, ``str``,
``bool`` or ``int``, are kept in the file and come back as they were trained),
``CatBoostRegressor`` for regression losses, plain ``CatBoost`` otherwise; predictions
apply the loss's transformation as ``CatBoostRegressor.predict`` does (``Exponent`` for
``Poisson`` and ``Tweedie``, raw values otherwise).

Categorical features stay native: the columns the model lists in its
``cat_features`` are passed as text or integers (a pandas ``category`` or ``string``
column is handed over as its values). CatBoost cannot score a missing categorical value,
so a missing value in such a column is refused at predict with one line naming the
column: fill it with a category of its own (``"missing"``) in ``preprocess.py``, as at
training. Numeric columns with pandas' nullable dtypes (``Int64``, ``boolean``) are
passed as floats with NaN for missing values (CatBoost's own missing-value handling).

CatBoost's loader trusts the framing of a ``.cbm`` file (a truncated file can crash the
process or load with half its tables), so :func:`check_framing` checks the header, the
model core's size and every table's size against the file before CatBoost reads it.
Scoring uses ``ROLLBACKKIT_MODEL_THREADS`` threads (default 1; CatBoost's own default
is every core).
"""

from __future__ import annotations

import struct
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
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component

FORMAT = "catboost-cbm"
MAGIC = b"CBM1"
# CatBoost's own parameters shown by show and compared by diff, when the model records them.
PARAMS = (
    "loss_function",
    "iterations",
    "depth",
    "learning_rate",
    "l2_leaf_reg",
    "border_count",
    "grow_policy",
    "one_hot_max_size",
    "random_seed",
)


class CatBoostScorer(Scorer):
    """A CatBoost model: ``predict_proba`` per class for a classifier, ``predict`` otherwise."""

    flavor = "catboost"

    def __init__(self, native: Any, classes: list[Any] | None, origin: str) -> None:
        super().__init__(native, classes)
        self._names = [str(n) for n in native.feature_names_]
        self._cat = {int(i) for i in native.get_cat_feature_indices()}
        self._origin = origin
        loss = _loss(native)
        # what CatBoostRegressor.predict picks from its loss (a loaded model has no params to pick from)
        self._prediction_type = "Exponent" if loss.startswith(("Poisson", "Tweedie")) else "RawFormulaVal"

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Score ``features`` (columns by the model's names when it has them all)."""
        frame = self._frame(features)
        if self.classes is not None:
            proba = self.native.predict_proba(frame, thread_count=model_threads())
            return output_from_proba(proba, self.classes, features.index)
        values = self.native.predict(frame, prediction_type=self._prediction_type, thread_count=model_threads())
        return output_from_values(values, features.index)

    def _frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The frame as CatBoost takes it: categoricals as values, nullable numbers as floats."""
        if list(map(str, features.columns)) != self._names and set(self._names) <= set(map(str, features.columns)):
            features = features[self._names]
        columns: dict[Any, Any] = {}
        for i, name in enumerate(features.columns):
            col = features.iloc[:, i]
            if i in self._cat:
                if col.isna().any():
                    raise InvalidInput(
                        f"Column {name!r} has a missing value, and the CatBoost model ({self._origin}) takes it as a "
                        "categorical feature, which CatBoost cannot score missing.",
                        "Fill missing categories with a value of their own (e.g. 'missing') in preprocess.py, as at "
                        "training.",
                    )
                if isinstance(col.dtype, pd.CategoricalDtype | pd.StringDtype):
                    col = col.astype(object)
            elif isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
                col.dtype, pd.CategoricalDtype | pd.DatetimeTZDtype
            ):
                col = pd.Series(col.to_numpy(dtype="float64", na_value=np.nan), index=col.index)
            columns[name] = col
        return pd.DataFrame(columns, index=features.index)

    def input_names(self) -> list[str] | None:
        """The feature names CatBoost recorded (None for its defaults ``0``, ``1``, ...)."""
        if self._names == [str(i) for i in range(len(self._names))]:
            return None
        return list(self._names)

    def n_inputs(self) -> int | None:
        """How many features the model takes."""
        return len(self._names)

    def structure(self) -> Structure:
        """The class, CatBoost's own hyper-parameters and the tree count."""
        try:
            recorded = self.native.get_all_params() or {}
        except Exception:  # a model saved without its training parameters
            recorded = {}
        params: dict[str, Param] = {}
        for key in PARAMS:
            value = recorded.get(key)
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, str | int | float | bool):
                params[key] = value
        cats = [self._names[i] for i in sorted(self._cat) if i < len(self._names)]
        if cats:
            params["cat_features"] = ", ".join(cats)[:200]
        return Structure(
            steps=[type(self.native).__name__], params=params, size={"trees": int(self.native.tree_count_)}
        )


class CatBoostFlavor(Flavor):
    """CatBoost classifiers, regressors and raw models in ``.cbm`` files."""

    name = "catboost"
    label = "CatBoost"
    library = "catboost"
    extra = "catboost"
    formats: ClassVar[dict[str, str]] = {".cbm": FORMAT}
    modules = ("catboost",)
    packages = ("catboost",)

    def save(self, model: Any, out: Path) -> Stored:
        """``save_model`` in the ``cbm`` format."""
        cb = self.library_module()
        if not isinstance(model, cb.CatBoost) or not model.is_fitted():
            raise InvalidInput(
                f"The CatBoost model ({type(model).__name__}) is not fitted.", "Fit it before registering it."
            )
        dest = out / "model.cbm"
        try:
            model.save_model(str(dest), format="cbm")
        except Exception as exc:  # CatBoostError, or an OSError writing the file
            raise InvalidInput(f"The CatBoost model cannot be saved: {exc}.", "Check the model object.") from exc
        return Stored(dest, FORMAT)

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Refuse a file that is not a whole ``.cbm`` model (checked before CatBoost reads it)."""
        check_framing(path.read_bytes(), origin)
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Load the bytes into the class the model's loss calls for."""
        cb = self.library_module()
        check_framing(data, origin)
        try:
            model = cb.CatBoost().load_model(blob=data)
            loss = _loss(model)
            from catboost._catboost import is_classification_objective, is_regression_objective

            if loss and is_classification_objective(loss):
                model = cb.CatBoostClassifier().load_model(blob=data)
            elif loss and is_regression_objective(loss):
                model = cb.CatBoostRegressor().load_model(blob=data)
        except Exception as exc:  # CatBoostError for a file CatBoost cannot read
            raise not_a_model(origin, self.label, exc) from exc
        classes: list[Any] | None = None
        if isinstance(model, cb.CatBoostClassifier):
            found = list(np.asarray(model.classes_).tolist()) if model.classes_ is not None else []
            classes = list(component.classes) if component.classes else (found or [0, 1])
        return CatBoostScorer(model, classes, origin)


def _loss(model: Any) -> str:
    try:
        return str((model.get_all_params() or {}).get("loss_function") or "")
    except Exception:  # a model saved without its training parameters
        return ""


def check_framing(data: bytes, origin: str) -> None:
    """Refuse bytes that are not one whole ``.cbm`` model: header, core and table sizes.

    Layout (CatBoost's ``TFullModel::Save``): ``CBM1``, the model core's size (uint32) and
    the core (a flatbuffer CatBoost verifies itself); then, for a model with categorical
    counters, the table count and each table as its size and bytes, to the end of the file.

    Raises:
        InvalidInput: The bytes are something else, or cut short.
    """
    if data[:4] != MAGIC:
        raise not_a_model(origin, "CatBoost", "it does not start with CatBoost's CBM1 header")
    pos, end = 4, len(data)

    def size() -> int:
        nonlocal pos
        if pos + 4 > end:
            raise not_a_model(origin, "CatBoost", f"the file is cut short at byte {end} (truncated)")
        (value,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if value == 0xFFFFFFFF:  # a 64-bit size follows
            if pos + 8 > end:
                raise not_a_model(origin, "CatBoost", f"the file is cut short at byte {end} (truncated)")
            (value,) = struct.unpack_from("<Q", data, pos)
            pos += 8
        return int(value)

    def skip(n: int) -> None:
        nonlocal pos
        if n > end - pos:
            raise not_a_model(origin, "CatBoost", f"the file is cut short at byte {end} (truncated)")
        pos += n

    skip(size())  # the model core
    if pos == end:
        return
    for _ in range(size()):  # categorical counter tables
        skip(size())
    if pos != end:
        raise not_a_model(origin, "CatBoost", f"{end - pos} bytes follow the model's last table")


FLAVOR = CatBoostFlavor()
