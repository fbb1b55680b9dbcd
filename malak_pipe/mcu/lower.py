"""Lower an int8 QDQ ONNX model (onnxruntime ``quantize_static``) to an integer-only graph.

The QDQ graph computes in float between QuantizeLinear/DequantizeLinear pairs; every
float compute node reads dequantized int8 activations and its result (through optional
Relu/Clip) is quantized again. Lowering keeps the integers and turns each such island into
one :class:`~malak_pipe.mcu.ir.Layer` with fixed-point requantization.

This module is the driver: the Q/DQ bookkeeping (which float tensor carries which int8
tensor), the graph input and output, and the dispatch of every other node to the handler its
operator family registered (:mod:`malak_pipe.mcu.ops`). uint8 activations are converted
exactly to int8 (q - 128, zero point - 128). A node no family handles raises
:class:`ArtifactError` naming the node, its operator type and the supported types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.fixedpoint import quantize_value
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.onnx_graph import OnnxIndex, node_label
from malak_pipe.mcu.ops import REGISTRY
from malak_pipe.mcu.ops.registry import OnnxOp

QDQ_HINT = "quantize the model with onnxruntime quantize_static(quant_format=QuantFormat.QDQ)"


def lower_onnx(model: Any, path: str | None = None) -> IntGraph:
    """The integer graph of a QDQ ONNX model (``onnx.ModelProto``, a path, or an object with ``.proto``)."""
    import onnx

    if isinstance(model, (str, Path)):
        path = str(model)
        model = onnx.load(str(model))
    elif hasattr(model, "proto"):
        path = path or str(getattr(model, "path", ""))
        model = model.proto
    return Lowering(OnnxIndex(model, path or "<onnx model>")).run()


class Lowering:
    """The state of one lowering, and what the op handlers call.

    ``tensors``: the int8 tensors by name (aliases included until the end); ``layers``: in
    execution order. A handler reads its activation inputs with :meth:`value`, its result's
    quantization (and fused clamp) with :meth:`output`, and appends with :meth:`add_layer`.
    """

    def __init__(self, index: OnnxIndex):
        self.onnx = index
        self.tensors: dict[str, QTensor] = {}
        self.layers: list[Layer] = []
        self._carried: dict[str, str] = {}  # float (or int8 alias) tensor -> the int8 tensor it carries
        self._done: set[int] = set()
        self.input_name = ""
        self.input_dtype = ""
        self._qdq = {"QuantizeLinear": self._quantize, "DequantizeLinear": self._dequantize}

    # ----------------------------------------------------------------- driver
    def run(self) -> IntGraph:
        self._graph_input()
        for node in self.onnx.nodes:
            if id(node) in self._done or node.op_type == "Constant":
                continue
            if node.op_type in self._qdq:
                self._qdq[node.op_type](node)
            else:
                self._onnx_op(node).lower(self, node)
        output = self._graph_output()
        tensors = {name: t for name, t in self.tensors.items() if name == t.name}  # drop view aliases
        return IntGraph(tensors, self.layers, self.input_name, output, meta=self._meta())

    def _onnx_op(self, node: Any) -> OnnxOp:
        op = REGISTRY.onnx_ops.get(node.op_type)
        if op is None:
            raise self.onnx.error(
                node,
                f"operator type '{node.op_type}' is not supported by the MCU lowering",
                hint=f"the firmware path supports {', '.join(REGISTRY.onnx_types())}; change the model or add "
                "an operator (malak_pipe/mcu/ops)",
            )
        return op

    def _model_input(self) -> Any:
        """The graph input that is not an initializer (older exporters list weights as inputs)."""
        inputs = [i for i in self.onnx.graph.input if i.name not in self.onnx.inits]
        if len(inputs) != 1:
            raise ArtifactError(f"the model must have one input, it has {len(inputs)}", path=self.onnx.path)
        return inputs[0]

    def _meta(self) -> dict[str, Any]:
        graph_input = self._model_input()
        dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        return {
            "onnx_input": graph_input.name,
            "onnx_input_shape_chw": dims[1:],
            "activation_dtype": self.input_dtype,
        }

    def _graph_input(self) -> None:
        graph_input = self._model_input()
        dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        if len(dims) != 4 or min(dims[1:]) <= 0:
            raise ArtifactError(
                f"the model input '{graph_input.name}' must be N x C x H x W with static C, H, W; got {dims}",
                path=self.onnx.path,
            )
        readers = self.onnx.consumers[graph_input.name]
        if len(readers) != 1 or readers[0].op_type != "QuantizeLinear":
            raise ArtifactError(
                f"the model input '{graph_input.name}' is not quantized by one QuantizeLinear",
                path=self.onnx.path,
                hint=QDQ_HINT,
            )
        q_node = readers[0]
        scale, zero_point, dtype = self._qparams(q_node)
        self.input_dtype = dtype
        _, c, h, w = dims
        self.input_name = q_node.output[0]
        self.tensors[self.input_name] = QTensor(self.input_name, (h, w, c), scale, zero_point)
        self._done.add(id(q_node))

    def _graph_output(self) -> str:
        names = self.onnx.output_names()
        if len(names) != 1:
            raise ArtifactError(f"the model must have one output, it has {len(names)}: {names}", path=self.onnx.path)
        node = self.onnx.producer.get(names[0])
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.tensors:
            raise ArtifactError(
                f"the model output '{names[0]}' is not the DequantizeLinear of an int8 tensor",
                path=self.onnx.path,
                hint=QDQ_HINT,
            )
        return self.tensors[node.input[0]].name

    # ------------------------------------------------------------ Q/DQ nodes
    def _qparams(self, node: Any) -> tuple[float, int, str]:
        scale = self.onnx.const(node.input[1])
        zero_point = self.onnx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or scale.size != 1:
            raise self.onnx.error(node, "activations must have one constant (per-tensor) scale")
        if zero_point is None:
            zero_point = np.zeros((), dtype=np.uint8)
        if zero_point.dtype == np.uint8:
            return float(scale.ravel()[0]), int(zero_point.ravel()[0]) - 128, "uint8"
        if zero_point.dtype == np.int8:
            return float(scale.ravel()[0]), int(zero_point.ravel()[0]), "int8"
        raise self.onnx.error(node, f"activations must be int8 or uint8, not {zero_point.dtype}")

    def _quantize(self, node: Any) -> None:
        source = self._carried.get(node.input[0])
        if source is None:
            raise self.onnx.error(node, "quantizes a tensor that no supported node produced")
        scale, zero_point, _ = self._qparams(node)
        if not self.tensors[source].same_params(scale, zero_point):
            raise self.onnx.error(node, "requantizes a tensor to new parameters without an operator in between")
        self.alias(node.output[0], source)

    def _dequantize(self, node: Any) -> None:
        if self.onnx.const(node.input[0]) is not None:
            return  # a constant (weights, bias): read by its consumer
        if node.input[0] not in self.tensors:
            raise self.onnx.error(node, "dequantizes a tensor that no supported node produced")
        self._carried[node.output[0]] = node.input[0]

    # -------------------------------------------------------- handler API
    def alias(self, name: str, source: str) -> None:
        """``name`` is the int8 tensor ``source`` under another name (a Q of the same parameters)."""
        self.tensors[name] = self.tensors[source]
        self._carried[name] = source

    def carry(self, name: str, tensor: QTensor) -> None:
        """The float tensor ``name`` holds the values of the int8 ``tensor`` (a view or a dequantize)."""
        self._carried[name] = tensor.name

    def value(self, node: Any, name: str) -> QTensor:
        """The int8 tensor that the float input ``name`` of ``node`` dequantizes."""
        source = self._carried.get(name)
        if source is None:
            raise self.onnx.error(
                node,
                f"input '{name}' is not a dequantized int8 activation",
                hint="every activation input must come through QuantizeLinear/DequantizeLinear (QDQ format)",
            )
        return self.tensors[source]

    def output(self, node: Any, shape: tuple[int, ...]) -> tuple[QTensor, int, int]:
        """Follow the float result through clamp activations to its QuantizeLinear: (tensor, act_min, act_max)."""
        lo, hi = -np.inf, np.inf
        current = node.output[0]
        while True:
            consumers = self.onnx.consumers.get(current, [])
            if len(consumers) != 1:
                raise self.onnx.error(
                    node, f"its float output '{current}' feeds {len(consumers)} nodes instead of one QuantizeLinear"
                )
            nxt = consumers[0]
            if nxt.op_type == "QuantizeLinear":
                break
            bounds = REGISTRY.clamps.get(nxt.op_type)
            if bounds is None:
                raise self.onnx.error(node, f"its output goes to {node_label(nxt)} without being quantized")
            clip_lo, clip_hi = bounds(self, nxt)
            lo, hi = max(lo, clip_lo), min(hi, clip_hi)
            self._done.add(id(nxt))
            current = nxt.output[0]
        scale, zero_point, _ = self._qparams(nxt)
        self._done.add(id(nxt))
        name = nxt.output[0]
        tensor = QTensor(name, shape, scale, zero_point)
        self.tensors[name] = tensor
        act_min = -128 if lo == -np.inf else max(-128, quantize_value(lo, scale, zero_point))
        act_max = 127 if hi == np.inf else min(127, quantize_value(hi, scale, zero_point))
        return tensor, act_min, act_max

    def add_layer(self, node: Any, op: str, inputs: list[QTensor], output: QTensor, attrs: dict, arrays: dict) -> None:
        """Append the layer of integer operator ``op`` lowered from ``node``."""
        self.layers.append(
            Layer(
                name=node.name or output.name,
                op=op,
                inputs=[t.name for t in inputs],
                output=output.name,
                attrs=attrs,
                arrays=arrays,
                source=node.op_type,
            )
        )

    def producer_layer(self, tensor: str) -> Layer | None:
        """The layer that writes the int8 ``tensor`` (None for the graph input)."""
        return next((layer for layer in self.layers if layer.output == tensor), None)

    def readers(self, tensor: str) -> int:
        """How many nodes read the int8 tensor (through its DequantizeLinear outputs)."""
        floats = [name for name, source in self._carried.items() if source == tensor and name != tensor]
        return sum(len(self.onnx.consumers.get(name, [])) for name in floats)
