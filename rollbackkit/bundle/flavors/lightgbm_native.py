"""LightGBM models in LightGBM's own text format (``.txt``), from a ``Booster`` or the wrappers.

An ``LGBMClassifier`` encodes its labels (strings, booleans) itself: its ``classes_`` go to
the manifest (``Stored.classes``) and answers carry them. pandas ``category`` features
are recoded by LightGBM from the categories the model text records; a text column that
should be one (JSON has no categories) is made a category first, so it scores the same.

LightGBM's parser trusts its input (a truncated file crashes the process), so the text is
checked here first: the header, every tree's arrays (one length, children and features in
range) and the closing sections. LightGBM then parses the checked header and trees only,
one tree after another (without ``tree_sizes``, whose parallel parse aborts on an error).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component

LABEL = "LightGBM"
CLASSIFIERS = frozenset({"binary", "multiclass", "multiclassova"})
STRUCTURE_PARAMS = (
    "num_iterations",
    "num_leaves",
    "learning_rate",
    "max_depth",
    "min_data_in_leaf",
    "feature_fraction",
)
_HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "feature_names")
_INNER = ("split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child")


class ModelTextError(ValueError):
    """The text is not a complete, consistent LightGBM model."""


class LightGBMScorer(Scorer):
    """A ``lightgbm.Booster``: class probabilities for binary/multiclass objectives, else values."""

    flavor = "lightgbm"

    def __init__(self, native: Any, classes: Any, model: ModelText) -> None:
        super().__init__(native, classes)
        self.model = model

    def _frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in its order; text columns made the categories the model recorded."""
        names = self.input_names_as(list(map(str, features.columns)))
        frame = features[names] if names is not None and set(names) <= set(features.columns) else features
        known = self.native.pandas_categorical or []
        non_numeric = [
            c
            for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
            or not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]
        if len(non_numeric) != len(known):
            return frame  # LightGBM names the mismatch
        fixes = {
            col: pd.Categorical(frame[col].astype(object).where(frame[col].notna(), None), categories=cats)
            for col, cats in zip(non_numeric, known, strict=True)
            if not isinstance(frame[col].dtype, pd.CategoricalDtype)
        }
        return frame.assign(**fixes) if fixes else frame

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """``Booster.predict`` on the frame (probabilities for a classifier)."""
        values = self.native.predict(self._frame(features), num_threads=model_threads())
        if self.classes is None:
            return output_from_values(values, features.index)
        return output_from_proba(values, self.classes, features.index)

    def input_names(self) -> list[str] | None:
        """The names LightGBM recorded (None for its defaults, ``Column_0``...)."""
        names = self.model.feature_names
        return None if names == [f"Column_{i}" for i in range(len(names))] else names

    def input_names_as(self, columns: Sequence[str]) -> list[str] | None:
        """The recorded names, spelled as in ``columns`` (LightGBM wrote their spaces as ``_``)."""
        names = self.input_names()
        if names is None:
            return None
        spelled = {c.replace(" ", "_"): c for c in columns}
        return [spelled.get(n, n) for n in names]

    def n_inputs(self) -> int | None:
        """``num_feature()``."""
        return len(self.model.feature_names)

    def structure(self) -> Structure:
        """Objective, trees, leaves, learning rate (from the model text's parameters)."""
        params: dict[str, Param] = {"objective": self.model.objective}
        params.update({k: _scalar(self.model.params[k]) for k in STRUCTURE_PARAMS if k in self.model.params})
        if self.model.num_class > 1:
            params["num_class"] = self.model.num_class
        return Structure(steps=["Booster"], params=params, size={"trees": self.model.n_trees})


class LightGBMFlavor(Flavor):
    """LightGBM Boosters and scikit-learn wrappers in LightGBM's text model format."""

    name = "lightgbm"
    label = LABEL
    library = "lightgbm"
    extra = "lightgbm"
    formats: ClassVar[dict[str, str]] = {".txt": "lightgbm-text"}
    modules = ("lightgbm",)
    packages = ("lightgbm",)

    def accepts(self, obj: Any) -> bool:
        """A Booster or a fitted wrapper (anything of the lightgbm package with a booster)."""
        return super().accepts(obj) and (hasattr(obj, "booster_") or hasattr(obj, "model_to_string"))

    def save(self, model: Any, out: Path) -> Stored:
        """Write ``model_to_string()``; a wrapper's classes (its own label encoding) to the manifest."""
        self.library_module()
        booster = model.booster_ if hasattr(model, "booster_") else model
        dest = out / "model.txt"
        dest.write_text(booster.model_to_string(), encoding="utf-8")
        classes = getattr(model, "classes_", None) if hasattr(model, "booster_") else None
        labels = tuple(c.item() if isinstance(c, np.generic) else c for c in classes) if classes is not None else None
        return Stored(dest, "lightgbm-text", classes=labels)

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Check the file is a complete LightGBM text model (nothing of it runs)."""
        read_model_text(path.read_bytes(), origin)
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Check the text, then ``Booster(model_str=...)`` on its checked parts."""
        lgb = self.library_module()
        model = read_model_text(data, origin)
        try:
            booster = lgb.Booster(model_str=model.checked)
        except (lgb.basic.LightGBMError, ValueError) as exc:
            raise not_a_model(origin, LABEL, str(exc).strip()) from exc
        classes: Any = component.classes
        if classes is None and model.objective in CLASSIFIERS:
            classes = list(range(max(model.num_class, 2)))
        return LightGBMScorer(booster, classes, model)


class ModelText:
    """A checked LightGBM model text: what LightGBM is given, and what ``structure`` reports."""

    def __init__(self, header: dict[str, str], trees: list[str], params: dict[str, str], categorical: str) -> None:
        self.objective = header.get("objective", "").split(" ")[0]
        self.num_class = int(header["num_class"])
        self.feature_names = header["feature_names"].split(" ")
        self.n_trees = len(trees)
        self.params = params
        lines = ["tree", *(f"{k}={v}" if v else k for k, v in header.items())]
        self.checked = "\n".join([*lines, "", *trees, "end of trees", "", categorical, ""])


def read_model_text(data: bytes, origin: str) -> ModelText:
    """Parse and check a LightGBM model text.

    Raises:
        InvalidInput: It is not a complete, consistent LightGBM model.
    """
    try:
        return _parse(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise not_a_model(origin, LABEL, "the file is not text") from exc
    except ModelTextError as exc:
        raise not_a_model(origin, LABEL, str(exc)) from exc


def _parse(text: str) -> ModelText:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "tree":
        raise ModelTextError("it does not start with LightGBM's 'tree' line (is it another kind of file?)")
    if "end of trees" not in (line.strip() for line in lines):
        raise ModelTextError("it has no 'end of trees' line (the file is cut short)")
    blocks = _blocks(lines[1:])
    header = blocks.pop(0)
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing:
        raise ModelTextError(f"its header lacks {', '.join(missing)}")
    header.pop("tree_sizes", None)
    n_features = _count(header["max_feature_idx"], "max_feature_idx") + 1
    for key in ("feature_names", "feature_infos", "monotone_constraints"):
        if key in header and len(header[key].split(" ")) != n_features:
            raise ModelTextError(f"{key} does not list its {n_features} features")
    per_iteration = _count(header["num_tree_per_iteration"], "num_tree_per_iteration")
    if _count(header["num_class"], "num_class") < 1 or per_iteration < 1:
        raise ModelTextError("num_class and num_tree_per_iteration must be at least 1")
    trees = []
    for i, block in enumerate(blocks):
        if block.get("Tree") != str(i):
            raise ModelTextError(f"tree {i} is missing or out of order")
        trees.append(_tree(block, i, n_features))
    if len(trees) % per_iteration:
        raise ModelTextError(f"{len(trees)} trees are not whole iterations of {per_iteration}")
    tail = text[text.index("end of trees") :].split("\n")
    if "parameters:" in tail and "end of parameters" not in tail:
        raise ModelTextError("its parameters section has no end (the file is cut short)")
    return ModelText(header, trees, _parameters(tail), _categorical(tail))


def _blocks(lines: list[str]) -> list[dict[str, str]]:
    """The header, then each tree, as key -> value (until 'end of trees')."""
    blocks: list[dict[str, str]] = [{}]
    for raw in lines:
        line = raw.strip()
        if line == "end of trees":
            return blocks
        if line.startswith("Tree="):
            blocks.append({})
        if line:
            key, _, value = line.partition("=")
            blocks[-1][key] = value
    raise ModelTextError("it has no 'end of trees' line")  # pragma: no cover - checked first


def _count(value: str, what: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ModelTextError(f"{what} is not a count") from None
    if n < 0 or n > 10**9:
        raise ModelTextError(f"{what} is out of range")
    return n


def _numbers(block: dict[str, str], key: str, n: int, tree: int, kind: str = "float64") -> np.ndarray:
    if key not in block:
        raise ModelTextError(f"tree {tree} lacks {key}")
    try:
        values = np.array(block[key].split(" ") if n else [], dtype=kind)
    except (ValueError, OverflowError):
        raise ModelTextError(f"tree {tree}: {key} holds something that is not a number") from None
    if len(values) != n:
        raise ModelTextError(f"tree {tree}: {key} holds {len(values)} values, not {n}")
    return values


def _tree(block: dict[str, str], i: int, n_features: int) -> str:
    """Check one tree's arrays; return its text for LightGBM."""
    leaves = _count(block.get("num_leaves", ""), f"tree {i} num_leaves")
    if leaves < 1:
        raise ModelTextError(f"tree {i} has no leaves")
    if block.get("is_linear", "0") != "0":
        raise ModelTextError(f"tree {i} is a linear tree (linear_tree=true), which rollbackkit cannot check")
    _numbers(block, "leaf_value", leaves, i)
    _numbers(block, "shrinkage", 1, i)
    if leaves > 1:
        arrays = {key: _numbers(block, key, leaves - 1, i) for key in _INNER}
        feature, left, right = (arrays[k].astype("int64") for k in ("split_feature", "left_child", "right_child"))
        node = np.arange(leaves - 1)
        for child in (left, right):
            inner, leaf = child >= 0, child < 0
            if (
                (child[inner] <= node[inner]).any()
                or (child[inner] >= leaves - 1).any()
                or (~child[leaf] >= leaves).any()
            ):
                raise ModelTextError(f"tree {i}: a child index outside the tree or before its parent")
        if ((feature < 0) | (feature >= n_features)).any():
            raise ModelTextError(f"tree {i}: a split on a feature the model does not have")
        num_cat = _count(block.get("num_cat", "0"), f"tree {i} num_cat")
        categorical = (arrays["decision_type"].astype("int64") & 1) == 1
        if (
            categorical.any()
            and ((arrays["threshold"][categorical] < 0) | (arrays["threshold"][categorical] >= num_cat)).any()
        ):
            raise ModelTextError(f"tree {i}: a categorical split without its categories")
        if num_cat:
            bounds = _numbers(block, "cat_boundaries", num_cat + 1, i, "int64")
            if bounds[0] != 0 or (np.diff(bounds) < 0).any():
                raise ModelTextError(f"tree {i}: cat_boundaries out of order")
            _numbers(block, "cat_threshold", int(bounds[-1]), i, "uint32")
    return "\n".join(f"{k}={v}" for k, v in block.items()) + "\n\n"


def _parameters(tail: list[str]) -> dict[str, str]:
    """The ``[key: value]`` lines of the closing parameters section (for ``structure``)."""
    params = {}
    for line in tail:
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and ": " in line:
            key, _, value = line[1:-1].partition(": ")
            params[key] = value
    return params


def _categorical(tail: list[str]) -> str:
    """The ``pandas_categorical`` line, checked as JSON lists of categories."""
    lines = [line.strip() for line in tail if line.strip().startswith("pandas_")]
    if lines and not lines[-1].startswith("pandas_categorical:"):
        raise ModelTextError("its pandas_categorical line is cut short")
    if not lines:
        return "pandas_categorical:null"
    try:
        value = json.loads(lines[-1].removeprefix("pandas_categorical:"))
    except ValueError:
        raise ModelTextError("its pandas_categorical line is not JSON (the file is cut short)") from None
    if value is not None and not (isinstance(value, list) and all(isinstance(v, list) for v in value)):
        raise ModelTextError("its pandas_categorical line does not list categories")
    return f"pandas_categorical:{json.dumps(value)}"


def _scalar(text: str) -> Param:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


FLAVOR = LightGBMFlavor()
