"""Lower an int8 QDQ ONNX model to an integer-only graph, following the graph.

The QDQ graph computes in float between QuantizeLinear/DequantizeLinear nodes; the lowering
keeps the integers. It walks the nodes in order and keeps a state per ONNX tensor
(:mod:`malak_pipe.mcu.values`): a float tensor that is a function of one int8 tensor, an int8
ONNX tensor, or the float result of an operator waiting for its quantization. So it follows what
the graph does rather than the patterns of one exporter:

* Q/DQ pairs are bookkeeping; a QuantizeLinear to new parameters, or one that is missing where
  an integer consumer needs one, becomes an exact 256-entry lookup table;
* view operators (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Gather, Slice, Identity,
  Dropout) move no bytes: they map the logical index of their input (:mod:`malak_pipe.mcu.layout`),
  with or without Q/DQ around them, and each consumer checks it can read the layout;
* activations and arithmetic on functions of one int8 tensor (x * sigmoid(x), x * relu6(x + 3) /
  6...) are evaluated on the 256 codes and become one lookup table (or a clamp of the producer);
* every other operator goes to the handler its family registered (:mod:`malak_pipe.mcu.ops`),
  which reads int8 operands and declares its float result (:meth:`Lowering.produce`); the
  QuantizeLinear after it, through clamps and views, gives the layer's output parameters.

uint8 activations convert exactly to int8 (q - 128, zero point - 128). A node no family handles
raises :class:`ArtifactError` naming the node, its operator type and the supported types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.fixedpoint import quantize_value
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.layout import is_storage_order, map_index, map_shape_of, store_shape
from malak_pipe.mcu.onnx_graph import OnnxIndex, node_label
from malak_pipe.mcu.ops import REGISTRY
from malak_pipe.mcu.ops.registry import OnnxOp
from malak_pipe.mcu.tables import Tables
from malak_pipe.mcu.values import CODES, Coded, EmitFn, Pending, State, Value, dequantize, quantize

QDQ_HINT = "quantize the model with onnxruntime quantize_static(quant_format=QuantFormat.QDQ)"


def lower_onnx(model: Any, path: str | None = None, *, host_softmax: bool = False) -> IntGraph:
    """The integer graph of a QDQ ONNX model (``onnx.ModelProto``, a path, or an object with ``.proto``).

    ``host_softmax``: a final Softmax is left to the host (the graph outputs its int8 input).
    """
    import onnx

    if isinstance(model, (str, Path)):
        path = str(model)
        model = onnx.load(str(model))
    elif hasattr(model, "proto"):
        path = path or str(getattr(model, "path", ""))
        model = model.proto
    return Lowering(OnnxIndex(model, path or "<onnx model>"), host_softmax=host_softmax).run()


class Lowering:
    """The state of one lowering, and what the op handlers call.

    ``tensors``: the int8 tensors by name; ``layers``: in execution order; ``states``: what is
    known of each ONNX tensor. A handler reads int8 operands with :meth:`operand` (any layout)
    or :meth:`map_input` (a channels-last map), declares its result with :meth:`produce` and
    appends layers with :meth:`add_layer` from the emit function it gives.
    """

    def __init__(self, index: OnnxIndex, *, host_softmax: bool = False):
        self.onnx = index
        self.host_softmax = host_softmax
        self.tensors: dict[str, QTensor] = {}
        self.layers: list[Layer] = []
        self.states: dict[str, State] = {}
        self.meta: dict[str, Any] = {}
        self.tables = Tables(self)
        self._kept: set[str] = set()
        self.input_name = ""

    # ----------------------------------------------------------------- driver
    def run(self) -> IntGraph:
        self._graph_input()
        for node in self.onnx.nodes:
            if node.op_type != "Constant":
                self._lower_node(node)
        output = self._graph_output()
        return IntGraph(self.tensors, self.layers, self.input_name, output, meta=self.meta)

    def _lower_node(self, node: Any) -> None:
        kind = node.op_type
        if kind == "QuantizeLinear":
            self._quantize(node)
            return
        if kind == "DequantizeLinear":
            self._dequantize(node)
            return
        first = self.states.get(node.input[0]) if node.input else None
        if kind in REGISTRY.views and first is not None:
            self.states[node.output[0]] = first.with_index(REGISTRY.views[kind](self, node, first.index))
            if node.input[0] in self._kept:
                self._kept.add(node.output[0])
        elif kind in REGISTRY.clamps and isinstance(first, Pending):
            self.states[node.output[0]] = first.clamped(*REGISTRY.clamps[kind](self, node))
        elif kind in REGISTRY.elementwise and (source := self._unary_source(node)) is not None:
            inputs = [self._elementwise_input(name) for name in node.input]
            with np.errstate(all="ignore"):  # inf and NaN saturate when quantized, as in ONNX Runtime
                values = REGISTRY.elementwise[kind](self, node, inputs)
            self.states[node.output[0]] = source.with_fn(np.broadcast_to(values, (256,)), kind)
        else:
            self._onnx_op(node).lower(self, node)

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

    def _unary_source(self, node: Any) -> Value | None:
        """The one function-of-an-int8-tensor every non-constant input of ``node`` is, if so."""
        source: Value | None = None
        for name in node.input:
            state = self.states.get(name) if name else None
            if state is None:
                if name and self.scalar(name) is None:
                    return None
                continue
            if not isinstance(state, Value):
                return None
            if source is not None and (
                state.tensor.name != source.tensor.name or not np.array_equal(state.index, source.index)
            ):
                return None
            source = source or state
        return source

    def _elementwise_input(self, name: str) -> np.ndarray | None:
        state = self.states.get(name) if name else None
        return state.values() if isinstance(state, Value) else (self.scalar(name) if name else None)

    def scalar(self, name: str) -> np.float32 | None:
        """A constant input of one element as float32 (None when it is not one)."""
        value = self.onnx.const(name)
        producer = self.onnx.producer.get(name)
        if value is None and producer is not None and producer.op_type == "DequantizeLinear":
            q, s, z = (self.onnx.const(producer.input[i]) if len(producer.input) > i else None for i in range(3))
            if q is not None and s is not None:
                value = (q.astype(np.float32) - (0 if z is None else z.astype(np.float32))) * s.astype(np.float32)
        if value is None or value.size != 1 or not np.issubdtype(value.dtype, np.number):
            return None
        return np.float32(value.ravel()[0])

    # ------------------------------------------------------- input and output
    def _model_input(self) -> Any:
        """The graph input that is not an initializer (older exporters list weights as inputs)."""
        inputs = [i for i in self.onnx.graph.input if i.name not in self.onnx.inits]
        if len(inputs) != 1:
            raise ArtifactError(f"the model must have one input, it has {len(inputs)}", path=self.onnx.path)
        return inputs[0]

    def _graph_input(self) -> None:
        graph_input = self._model_input()
        dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        if len(dims) not in (3, 4) or min(dims[1:]) <= 0 or dims[0] > 1:
            raise ArtifactError(
                f"the model input '{graph_input.name}' must be 1 x C x H x W or 1 x C x L with static C, H, W "
                f"(or L); got {dims}",
                path=self.onnx.path,
                hint="export with batch_size 1: the firmware runs one image per inference",
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
        shape = (dims[2], dims[3], dims[1]) if len(dims) == 4 else (1, dims[2], dims[1])
        self.input_name = q_node.output[0]
        tensor = self.new_tensor(self.input_name, shape, scale, zero_point)
        self.states[self.input_name] = Coded(tensor, map_index(shape, len(dims)), CODES, scale, zero_point)
        self.onnx.nodes = [node for node in self.onnx.nodes if node is not q_node]
        self.meta.update(
            {"onnx_input": graph_input.name, "onnx_input_shape_chw": dims[1:], "activation_dtype": dtype}
        )

    def _graph_output(self) -> str:
        names = self.onnx.output_names()
        if len(names) != 1:
            raise ArtifactError(f"the model must have one output, it has {len(names)}: {names}", path=self.onnx.path)
        state = self.states.get(names[0])
        if not isinstance(state, (Value, Pending)):
            raise ArtifactError(
                f"the model output '{names[0]}' is not the DequantizeLinear of an int8 tensor",
                path=self.onnx.path,
                hint=QDQ_HINT,
            )
        tensor, index = self.operand(self.onnx.producer[names[0]], names[0])
        if map_shape_of(index) == store_shape(tensor.shape) and index.ndim > 2:
            self.meta["output_layout"] = "channels_last"  # an N x C x H x W output, stored H x W x C
        elif not is_storage_order(index, tensor.size):
            raise ArtifactError(
                f"the model output '{names[0]}' (shape {list(index.shape)}) is not in the channels-last order "
                f"of its int8 tensor {tensor.shape}",
                path=self.onnx.path,
                hint="end the model with a linear layer, or a flatten of a 1 x 1 map",
            )
        return tensor.name

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
        state = self.states.get(node.input[0])
        scale, zero_point, _ = self._qparams(node)
        name = node.output[0]
        if isinstance(state, Value) and node.input[0] in self._kept:
            self.states[name] = Coded(state.tensor, state.index, CODES, state.tensor.scale, state.tensor.zero_point)
            self._kept.add(name)
        elif isinstance(state, Value):
            codes = quantize(state.values(), scale, zero_point)
            self.states[name] = Coded(state.tensor, state.index, codes, scale, zero_point, name, state.ops)
        elif isinstance(state, Pending):
            tensor = self._emit(state, name, scale, zero_point)
            self.states[name] = Coded(tensor, state.index, CODES, tensor.scale, tensor.zero_point)
        else:
            raise self.onnx.error(node, "quantizes a tensor that no supported node produced")

    def _dequantize(self, node: Any) -> None:
        if self.onnx.const(node.input[0]) is not None:
            return  # a constant (weights, bias): read by its consumer
        state = self.states.get(node.input[0])
        if not isinstance(state, Coded):
            raise self.onnx.error(node, "dequantizes a tensor that no supported node produced")
        if node.input[0] in self._kept:  # the host's softmax: the int8 tensor itself goes on
            self.states[node.output[0]] = Value(state.tensor, state.index)
            self._kept.add(node.output[0])
            return
        scale, zero_point, _ = self._qparams(node)
        coded = Coded(state.tensor, state.index, state.codes, scale, zero_point, state.name, state.ops)
        self.states[node.output[0]] = coded.dequantized()

    # ----------------------------------------------------------- handler API
    def operand(self, node: Any, name: str) -> tuple[QTensor, np.ndarray]:
        """The int8 tensor that the float input ``name`` of ``node`` holds, and its logical index."""
        state = self.states.get(name)
        if isinstance(state, Pending):
            if state.natural is None:
                raise self.onnx.error(
                    state.node,
                    f"its output goes to {node_label(node)} without being quantized",
                    hint="quantize the model in QDQ format (every operator output through QuantizeLinear)",
                )
            return self._emit(state, name, *state.natural), state.index
        if isinstance(state, Value):
            return self.tables.materialize(state, name), state.index
        raise self.onnx.error(
            node,
            f"input '{name}' is not a dequantized int8 activation",
            hint="every activation input must come through QuantizeLinear/DequantizeLinear (QDQ format)",
        )

    def function(self, node: Any, name: str) -> Value:
        """Input ``name`` as a function of an int8 tensor, for a consumer that tabulates its inputs."""
        state = self.states.get(name)
        if isinstance(state, Value):
            return state
        tensor, index = self.operand(node, name)
        return Value(tensor, index)

    def map_input(self, node: Any, name: str) -> tuple[QTensor, int]:
        """The int8 channels-last map (H, W, C) that input ``name`` is, and its ONNX rank (4, or 3 for 1-D)."""
        tensor, index = self.operand(node, name)
        shape = map_shape_of(index) if index.ndim in (3, 4) else None
        if shape is None or tuple(shape) != tuple(tensor.shape):
            raise self.onnx.error(
                node,
                f"input '{name}' (logical shape {list(index.shape)}) is not a channels-last view of the int8 "
                f"tensor {tensor.shape} it holds",
                hint="feed spatial operators N x C x H x W (or N x C x L) maps; a transpose or reshape in "
                "between would need the bytes moved",
            )
        return tensor, index.ndim

    def produce(
        self,
        node: Any,
        shape: tuple[int, ...],
        index: np.ndarray,
        emit: EmitFn,
        natural: tuple[float, int] | None = None,
        rescales: bool = True,
    ) -> None:
        """Declare the float result of ``node`` (storage ``shape``, logical ``index``); see :class:`Pending`."""
        self.states[node.output[0]] = Pending(node, tuple(shape), index, emit, natural, rescales)

    def add_layer(self, node: Any, op: str, inputs: list[QTensor], output: QTensor, attrs: dict, arrays: dict) -> None:
        """Append the layer of integer operator ``op`` lowered from ``node``."""
        name = node.name or output.name
        self.layers.append(Layer(name, op, [t.name for t in inputs], output.name, attrs, arrays, node.op_type))

    def producer_layer(self, tensor: str) -> Layer | None:
        """The layer that writes the int8 ``tensor`` (None for the graph input)."""
        return next((layer for layer in self.layers if layer.output == tensor), None)

    def keep(self, name: str) -> None:
        """The QuantizeLinear of float ``name`` keeps its int8 tensor (a softmax left to the host)."""
        self._kept.add(name)

    # -------------------------------------------------------------- internals
    def new_tensor(self, name: str, shape: tuple[int, ...], scale: float, zero_point: int) -> QTensor:
        """A new int8 tensor (its name made unique)."""
        base, suffix = name, 1
        while name in self.tensors:
            name, suffix = f"{base}_{suffix}", suffix + 1
        tensor = QTensor(name, tuple(shape), scale, zero_point)
        self.tensors[name] = tensor
        return tensor

    def _emit(self, pending: Pending, name: str, scale: float, zero_point: int) -> QTensor:
        """The int8 tensor of ``pending`` quantized with (scale, zero point), its layers appended once."""
        lo = -128 if pending.lo == -np.inf else max(-128, quantize_value(pending.lo, scale, zero_point))
        hi = 127 if pending.hi == np.inf else min(127, quantize_value(pending.hi, scale, zero_point))
        key = (scale, zero_point, lo, hi)
        if key in pending.made:
            return self.tensors[pending.made[key]]
        natural = pending.natural or (scale, zero_point)  # an operator that does not rescale declares it
        if pending.rescales or natural == (scale, zero_point):
            out = self.new_tensor(name, pending.shape, scale, zero_point)
            pending.emit(out, lo, hi)
        else:  # the natural result is exact: requantize it (and clamp it) with a table
            base = Pending(pending.node, pending.shape, pending.index, pending.emit, natural, made=pending.made)
            real = np.clip(dequantize(CODES, *natural), pending.lo, pending.hi)
            codes = quantize(real, scale, zero_point)
            exact = self._emit(base, pending.node.output[0], *natural)  # named after the operator's float output
            out = self.tables.table(Coded(exact, pending.index, codes, scale, zero_point, name))
        pending.made[key] = out.name
        return out
