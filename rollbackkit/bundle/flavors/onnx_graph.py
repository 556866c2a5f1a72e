"""What an ONNX model file says about itself, read from its protobuf without running it.

For ``show`` and ``diff`` (:func:`graph_structure`: producer, opsets, inputs/outputs, node
and op counts, trees of ``TreeEnsemble*`` nodes, weights), the classes a classifier graph
records (:func:`graph_classes`), and whether any tensor keeps its data in another file
(:func:`external_tensors`), which the ONNX flavor refuses. Takes an ``onnx.ModelProto``;
imports no library itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from rollbackkit.bundle.flavors.base import Param, Structure

MAX_STEPS = 100  # beyond this many nodes, steps list op types with their counts
_CLASS_ATTRS = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


def graph_structure(proto: Any) -> Structure:
    """What ``show`` and ``diff`` say about an ONNX model: parameters, steps and size."""
    graph = proto.graph
    nodes = list(graph.node)
    ops = Counter(n.op_type for n in nodes)
    opsets = {o.domain or "ai.onnx": int(o.version) for o in proto.opset_import}
    initialised = {t.name for t in graph.initializer}
    params: dict[str, Param] = {
        "producer_name": proto.producer_name or None,
        "producer_version": proto.producer_version or None,
        "ir_version": int(proto.ir_version),
        "opset": opsets.get("ai.onnx"),
        "inputs": ", ".join(i.name for i in graph.input if i.name not in initialised)[:200],
        "outputs": ", ".join(o.name for o in graph.output)[:200],
    }
    if "ai.onnx.ml" in opsets:
        params["opset_ml"] = opsets["ai.onnx.ml"]
    if len(nodes) <= MAX_STEPS:
        steps = [graph.name or "graph"] + [f"{n.name or f'{n.op_type}_{i}'}: {n.op_type}" for i, n in enumerate(nodes)]
    else:
        steps = [graph.name or "graph"] + [f"ops.{op}: {count} nodes" for op, count in sorted(ops.items())]
    size = {"nodes": len(nodes), "ops": len(ops)}
    trees = sum(_trees(n) for n in nodes)
    if trees:
        size["trees"] = trees
    weights = sum(int(np.prod(t.dims)) for t in graph.initializer)
    if weights:
        size["weights"] = weights
    return Structure(steps=steps, params=params, size=size)


def _trees(node: Any) -> int:
    """Trees in a ``TreeEnsemble*`` node (0 for other ops)."""
    if not node.op_type.startswith("TreeEnsemble"):
        return 0
    for attr in node.attribute:
        if attr.name == "nodes_treeids":
            return len(set(attr.ints))
        if attr.name == "tree_roots":
            return len(attr.ints)
    return 0


def graph_classes(proto: Any) -> list[Any] | None:
    """Class labels a classifier graph records (ZipMap first, then a classifier node)."""
    nodes = sorted(proto.graph.node, key=lambda n: n.op_type != "ZipMap")
    for node in nodes:
        for attr in node.attribute:
            if attr.name in _CLASS_ATTRS and (attr.strings or attr.ints):
                if attr.strings:
                    return [s.decode("utf-8") for s in attr.strings]
                return [int(i) for i in attr.ints]
    return None


def external_tensors(proto: Any) -> bool:
    """Whether any tensor of the model keeps its data in another file.

    Every message of the model is walked, not only the graph's initializers: sparse
    initializers and sparse attributes (a ``SparseTensorProto``'s values and indices are
    tensors), tensors in attributes, subgraphs (``If``/``Loop``/``Scan`` bodies), local
    functions and training graphs. onnxruntime reads an external tensor from a path under
    the working directory: the graph would answer that file's bytes.
    """
    todo = [proto]
    while todo:
        message = todo.pop()
        if message.DESCRIPTOR.full_name == "onnx.TensorProto" and (
            message.data_location == 1 or len(message.external_data)  # TensorProto.EXTERNAL
        ):
            return True
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == 3  # protobuf < 6
            if repeated and field.message_type.GetOptions().map_entry:
                continue  # map<,> of scalars (no tensor in ONNX's protos)
            todo.extend(value if repeated else [value])
    return False
