"""Read-only index of an ONNX graph: initializers, producers, consumers, attributes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError


def node_label(node: Any) -> str:
    """How error messages name an ONNX node: its name and operator type."""
    return f"ONNX node '{node.name or node.output[0]}' ({node.op_type})"


class OnnxIndex:
    """Initializers as numpy arrays, the producer and consumers of every tensor."""

    def __init__(self, proto: Any, path: str):
        from onnx import numpy_helper

        self.path = path
        self.graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.nodes = list(self.graph.node)
        self.inits: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in self.nodes:
            if node.op_type == "Constant":
                self.inits[node.output[0]] = _constant_value(node)
                continue
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers[name].append(node)

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        from onnx import helper

        for attribute in node.attribute:
            if attribute.name == name:
                return helper.get_attribute_value(attribute)
        return default

    def error(self, node: Any, message: str, hint: str | None = None) -> ArtifactError:
        return ArtifactError(f"{node_label(node)}: {message}", path=self.path, hint=hint)

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output, else None."""
        return self.inits.get(name)

    def output_names(self) -> list[str]:
        return [o.name for o in self.graph.output]


def _constant_value(node: Any) -> np.ndarray:
    from onnx import helper, numpy_helper

    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if attribute.name == "value":
            return numpy_helper.to_array(value)
        if attribute.name in ("value_float", "value_int"):
            return np.array(value)
        if attribute.name in ("value_floats", "value_ints"):
            return np.array(list(value))
    raise ArtifactError(f"{node_label(node)}: unsupported Constant attribute")
