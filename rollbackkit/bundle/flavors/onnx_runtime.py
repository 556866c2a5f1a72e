"""ONNX models run through onnxruntime (CPU), from the verified bytes.

Any ``.onnx`` file is taken: scikit-learn models converted with
``skl2onnx.to_onnx(model, X)``, XGBoost and LightGBM ones with onnxmltools, PyTorch and
TensorFlow exports. An in-memory ``onnx.ModelProto`` is saved as ``model.onnx``; a
scikit-learn object stays with the scikit-learn flavor (converting it is the user's choice:
``skl2onnx.to_onnx(pipeline, X_train[:1])`` gives one input per column, named after it).

Inputs are fed from the feature frame by name:

- one tensor input ``[N, F]`` (a converted tree model, a network export) gets the frame's
  columns in order, as the input's declared type (``float32`` for ``tensor(float)``): the
  order of the training data's columns at register (the graph names no features), which
  the schema then holds every input frame to; a text column there is one line naming it;
- one input per column (skl2onnx given a DataFrame) gets each column by its name, as the
  input's declared type. skl2onnx renames columns that are not identifiers
  (``mean radius`` -> ``mean_radius``); a column is matched to its renamed input too.

A graph whose inputs do not match the data's columns (names or count) is refused at
register with one line naming the file. Missing values: NaN passes to float inputs; a
missing value in a string or integer input is refused with one line naming the column.

Outputs: a classifier's label and probabilities (a tensor ``[N, C]`` or skl2onnx's ZipMap,
a list of dicts), or a regressor's single tensor; a single ``[N, C]`` output (C > 1) is read
as class probabilities. Classes come from the graph (ZipMap keys, a classifier node's
``classlabels_strings``/``classlabels_int64s``), else from the manifest, else ``0..C-1``;
string and integer labels keep their type (a boolean label converts to 0/1 in ONNX). The
graph's own label output is the prediction. Each session uses ``ROLLBACKKIT_MODEL_THREADS``
intra-op threads (default 1, :func:`~rollbackkit.bundle.flavors.base.model_threads`) on the
CPU execution provider. A graph with any tensor whose data sits in another file (an
initializer, a sparse tensor's values or indices, an attribute, a subgraph's or a local
function's) is refused: only the hashed bundle file is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from rollbackkit.bundle.artifacts import describe_error
from rollbackkit.bundle.flavors.base import (
    Flavor,
    Scorer,
    Stored,
    Structure,
    model_threads,
    not_a_model,
    output_from_proba,
    output_from_values,
)
from rollbackkit.bundle.flavors.onnx_graph import external_tensors, graph_classes, graph_structure
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component

_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _typed(labels: list[Any]) -> list[tuple[type, Any]]:
    return [(type(v), v) for v in labels]


def skl2onnx_name(column: str) -> str:
    """The input name skl2onnx gives a column (non-word characters to ``_``, no leading digit)."""
    name = re.sub(r"[^\w+]", "_", column)
    return "_" + name if re.match("^[0-9]", name) else name


class OnnxScorer(Scorer):
    """An onnxruntime session with what the graph says about its inputs, outputs and classes."""

    flavor = "onnx"

    def __init__(
        self, session: Any, proto: Any, classes: list[Any] | None, graph_classes: list[Any] | None, origin: str
    ) -> None:
        super().__init__(session, classes)
        self._proto = proto
        self._origin = origin
        self._inputs = session.get_inputs()
        self._outputs = [o.name for o in session.get_outputs()]
        self._zipmap = [o.type.startswith("seq(map") for o in session.get_outputs()]
        self._graph_classes = graph_classes
        shape = self._inputs[0].shape if len(self._inputs) == 1 else None
        self._tensor = shape is not None and len(shape) == 2 and shape[1] != 1
        self._width = shape[1] if shape is not None and len(shape) == 2 and isinstance(shape[1], int) else None
        self._mappings: dict[tuple[str, ...], list[int]] = {}

    @property
    def type_name(self) -> str:
        """``onnxruntime.InferenceSession`` (the graph's producer is a parameter)."""
        return "onnxruntime.InferenceSession"

    def input_names(self) -> list[str] | None:
        """None: columns are matched to per-column inputs at scoring (skl2onnx renames some)."""
        return None

    def n_inputs(self) -> int | None:
        """F of a single ``[N, F]`` input (None for per-column inputs)."""
        return self._width if self._tensor else None

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Run the graph on ``features`` and read its label and probabilities (or values)."""
        results = self.native.run(self._outputs, self._feeds(features))
        index = features.index
        if len(results) == 1 and not self._zipmap[0]:
            single = np.asarray(results[0])
            if self.classes is None and (single.ndim < 2 or single.shape[1] == 1):
                return output_from_values(single, index)
            if self.classes is None:
                self.classes = list(range(single.shape[1]))
            return output_from_proba(single, self.classes, index)
        label = np.asarray(results[0]).reshape(-1)
        maps = next((r for r, z in zip(results[1:], self._zipmap[1:], strict=True) if z), None)
        order = self._graph_classes or (list(maps[0]) if maps else None) or list(self.classes or [])
        table: Any = None
        if maps is not None:
            table = np.array([[row[c] for c in order] for row in maps], dtype="float64").reshape(len(maps), len(order))
        else:
            table = next((np.asarray(r) for r in results[1:] if np.asarray(r).ndim == 2), None)
        if self.classes is None:
            self.classes = list(order) if order else list(range(table.shape[1] if table is not None else 0))
        if table is not None and table.shape[1] == len(self.classes):  # one frame: the graph's label first
            return output_from_proba(table, self.classes, index, prediction=self._labels(label))
        return pd.DataFrame({"prediction": self._labels(label)}, index=index)

    def _labels(self, label: Any) -> Any:
        """The graph's labels as the recorded classes (their Python type)."""
        classes = self.classes or []
        graph = self._graph_classes or (list(range(len(classes))) if label.dtype.kind in "iu" else None)
        if graph and len(graph) == len(classes) and _typed(graph) != _typed(classes):  # 0 == False: types count
            lookup = dict(zip(graph, classes, strict=True))
            return pd.Series([lookup.get(v.item() if isinstance(v, np.generic) else v, v) for v in label]).to_numpy()
        return pd.Series(list(label)).infer_objects().to_numpy()

    def _feeds(self, features: pd.DataFrame) -> dict[str, Any]:
        columns = [str(c) for c in features.columns]
        if self._tensor or (len(self._inputs) == 1 and len(columns) > 1):
            inp = self._inputs[0]
            if self._width is not None and self._width != len(columns):
                raise InvalidInput(
                    f"The ONNX graph in {self._origin} takes {self._width} features in its input {inp.name!r}; "
                    f"the data gives it {len(columns)}.",
                    "Pass --features with the model's inputs in order, or the data it was trained on.",
                )
            dtype = _NUMPY.get(inp.type, np.float32)
            try:
                return {inp.name: features.to_numpy(dtype=dtype, na_value=np.nan if dtype != np.bool_ else False)}
            except (TypeError, ValueError) as exc:  # text (a category's labels) where the graph takes numbers
                raise self._not_numbers(features, inp) from exc
        mapping = self._mappings.get(tuple(columns)) or self._map(columns)
        return {inp.name: self._column(features.iloc[:, i], inp) for inp, i in zip(self._inputs, mapping, strict=True)}

    def _map(self, columns: list[str]) -> list[int]:
        """Per input, the position of its column (by name, or the name skl2onnx gave it)."""
        positions, missing = [], []
        for inp in self._inputs:
            found = [i for i, c in enumerate(columns) if c == inp.name] or [
                i for i, c in enumerate(columns) if skl2onnx_name(c) == inp.name
            ]
            if not found and len(self._inputs) == 1 and len(columns) == 1:
                found = [0]  # one column for one input: its name does not matter
            if len(found) == 1:
                positions.append(found[0])
            else:
                missing.append(inp.name)
        unused = [c for i, c in enumerate(columns) if i not in positions]
        if missing or unused:
            raise InvalidInput(
                f"The ONNX graph in {self._origin} does not take the data's columns: inputs without a column: "
                f"{missing[:5]}; columns without an input: {unused[:5]}.",
                "Convert the model with its training frame (skl2onnx.to_onnx(model, X)) so its inputs are the "
                "columns, or pass --features (or a preprocess.py) giving exactly its inputs.",
            )
        if len(self._mappings) < 64:
            self._mappings[tuple(columns)] = positions
        return positions

    def _column(self, col: pd.Series, inp: Any) -> Any:
        rank = len(inp.shape) if inp.shape is not None else 2
        if inp.type == "tensor(string)" or (inp.type not in _NUMPY and col.dtype == object):
            if col.isna().any():
                raise InvalidInput(
                    f"Column {col.name!r} has a missing value, and the ONNX graph in {self._origin} takes it as text.",
                    "Fill missing values (e.g. with 'missing') in preprocess.py, as at training.",
                )
            values = np.asarray([str(v) for v in col.to_numpy(dtype=object)], dtype=object)
        else:
            dtype = _NUMPY.get(inp.type, np.float32)
            if np.issubdtype(dtype, np.integer) and col.isna().any():
                raise InvalidInput(
                    f"Column {col.name!r} has a missing value, and the ONNX graph in {self._origin} takes it as "
                    "integers.",
                    "Fill missing values in preprocess.py, or convert the model with a float input for it.",
                )
            try:
                values = col.to_numpy(dtype=dtype, na_value=np.nan if np.issubdtype(dtype, np.floating) else False)
            except (TypeError, ValueError) as exc:
                raise self._not_numbers(col.to_frame(), inp) from exc
        return values.reshape(-1, 1) if rank == 2 else values.reshape(-1)

    def _not_numbers(self, features: pd.DataFrame, inp: Any) -> InvalidInput:
        """The one line for a column of text fed to a numeric input: it names the column and a value."""
        name, value = features.columns[0], None
        for i in range(features.shape[1]):
            col = features.iloc[:, i].dropna()
            try:
                col.to_numpy(dtype="float64")
            except (TypeError, ValueError):
                name = features.columns[i]
                value = next((v for v in col if not _is_number(v)), col.iloc[0] if len(col) else None)
                break
        return InvalidInput(
            f"Column {str(name)!r} holds {str(value)[:40]!r}, and the ONNX graph in {self._origin} takes it as numbers "
            f"({inp.type} input {inp.name!r}).",
            "Encode it as numbers in preprocess.py as at training (e.g. a category's codes), or convert the model "
            "with its encoder inside the graph.",
        )

    def structure(self) -> Structure:
        """Producer, opsets and inputs/outputs as parameters; nodes, op types, trees and weights as size."""
        return graph_structure(self._proto)


class OnnxFlavor(Flavor):
    """ONNX graphs in ``.onnx`` files, run by onnxruntime on the CPU."""

    name = "onnx"
    label = "ONNX"
    library = "onnxruntime"
    extra = "onnx"
    formats: ClassVar[dict[str, str]] = {".onnx": "onnx"}
    modules = ("onnx",)
    packages = ("onnxruntime", "onnx")

    def save(self, model: Any, out: Path) -> Stored:
        """Write an ``onnx.ModelProto`` as ``model.onnx``."""
        onnx = self.library_module("onnx")
        if not isinstance(model, onnx.ModelProto):
            raise InvalidInput(
                f"The ONNX object ({type(model).__name__}) is not a model (onnx.ModelProto).",
                "Pass the ModelProto (onnx.load('model.onnx')) or the .onnx file.",
            )
        dest = out / "model.onnx"
        dest.write_bytes(model.SerializeToString())
        return Stored(dest, "onnx")

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Refuse a file onnx cannot parse or onnxruntime cannot load (a session is built once)."""
        self.load(path.read_bytes(), None, origin)
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component | None, origin: str) -> Scorer:
        """Parse the graph, build a CPU session from the bytes, read its classes."""
        ort = self.library_module()
        onnx = self.library_module("onnx")
        try:
            proto = onnx.load_model_from_string(data)
        except Exception as exc:  # DecodeError for anything that is not a whole ModelProto
            raise not_a_model(origin, self.label, exc) from exc
        if not proto.graph.node and not proto.graph.output:
            raise not_a_model(origin, self.label, "it holds no graph (empty or cut short)")
        if external_tensors(proto):
            raise InvalidInput(
                f"{origin} keeps weights in external data files; only the model file itself is stored and read.",
                "Save the model as one file (onnx.save_model(model, path, save_as_external_data=False)).",
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = model_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings (declared vs actual shapes) would go to stderr
        try:
            session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's InvalidGraph, InvalidProtobuf, NotImplemented, Fail
            if type(exc).__name__ == "NotImplemented" or "NOT_IMPLEMENTED" in str(exc):
                raise InvalidInput(
                    f"{origin} is a readable ONNX model, but onnxruntime {ort.__version__} cannot run one of its "
                    f"operators: {describe_error(exc)}.",
                    "Convert it again for types onnxruntime implements (skl2onnx: float32 inputs, "
                    "e.g. to_onnx(model, X[:1].astype('float32'))), or use another opset.",
                ) from exc
            raise not_a_model(origin, self.label, exc) from exc
        found = graph_classes(proto)
        recorded = list(component.classes) if component is not None and component.classes else None
        classifier = len(session.get_outputs()) > 1 or found is not None
        classes = recorded or found if classifier else recorded
        if classes is None and (width := _class_width(session.get_outputs())):
            classes = list(range(width))  # a graph without labels numbers its classes (the target may name them)
        return OnnxScorer(session, proto, classes, found, origin)


def _class_width(outputs: list[Any]) -> int | None:
    """C of a graph's class probabilities ``[N, C]`` when the graph says it (C > 1), else None."""
    candidates = outputs if len(outputs) == 1 else outputs[1:]
    for out in candidates:
        shape = out.shape if out.type.startswith("tensor") else None
        if shape is not None and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1:
            return int(shape[1])
    return None


FLAVOR = OnnxFlavor()
