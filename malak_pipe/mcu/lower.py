"""Lower an int8 QDQ ONNX model (onnxruntime ``quantize_static``) to an integer-only graph.

The QDQ graph computes in float between QuantizeLinear/DequantizeLinear pairs; every
float compute node reads dequantized int8 activations and its result (through optional
Relu/Clip) is quantized again. Lowering keeps the integers and turns each such island into
one :class:`~malak_pipe.mcu.ir.Layer` with fixed-point requantization:

* Conv (group 1 or depthwise), Gemm/MatMul, MaxPool, AveragePool, GlobalAveragePool
  (and ReduceMean over H, W), Add; Relu/Clip after a compute node become its clamp;
  Flatten/Reshape/Identity/Dropout are views (a fully connected layer after a flattened map
  gets its weight columns permuted from CHW to HWC order).
* uint8 activations are converted exactly to int8 (q - 128, zero point - 128).
* Anything else raises :class:`ArtifactError` naming the ONNX node and its operator type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.fixedpoint import quantize_multiplier, quantize_multipliers, quantize_value
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.onnx_graph import OnnxIndex, node_label

SUPPORTED = (
    "Conv, Gemm, MatMul, MaxPool, AveragePool, GlobalAveragePool, ReduceMean (H, W), Add, "
    "Relu, Clip, Flatten, Reshape, Identity, Dropout"
)
VIEW_OPS = ("Flatten", "Reshape", "Identity", "Dropout", "Squeeze")
ADD_LEFT_SHIFT = 20


def lower_onnx(model: Any, path: str | None = None) -> IntGraph:
    """The integer graph of a QDQ ONNX model (``onnx.ModelProto``, a path, or an object with ``.proto``)."""
    import onnx

    if isinstance(model, (str, Path)):
        path = str(model)
        model = onnx.load(str(model))
    elif hasattr(model, "proto"):
        path = path or str(getattr(model, "path", ""))
        model = model.proto
    return _Lowering(OnnxIndex(model, path or "<onnx model>")).run()


class _Lowering:
    def __init__(self, index: OnnxIndex):
        self.g = index
        self.tensors: dict[str, QTensor] = {}
        self.layers: list[Layer] = []
        self.value_of: dict[str, str] = {}  # float tensor -> int8 tensor it carries
        self.done: set[int] = set()
        self.input_name = ""
        self.handlers = {
            "Conv": self._conv,
            "Gemm": self._gemm,
            "MatMul": self._matmul,
            "MaxPool": self._max_pool,
            "AveragePool": self._avg_pool,
            "GlobalAveragePool": self._global_avg_pool,
            "ReduceMean": self._reduce_mean,
            "Add": self._add,
            "Relu": self._activation,
            "Clip": self._activation,
            "QuantizeLinear": self._quantize,
            "DequantizeLinear": self._dequantize,
        }

    # ----------------------------------------------------------------- driver
    def run(self) -> IntGraph:
        self._graph_input()
        for node in self.g.nodes:
            if id(node) in self.done or node.op_type == "Constant":
                continue
            handler = self.handlers.get(node.op_type)
            if handler is None and node.op_type in VIEW_OPS:
                handler = self._view
            if handler is None:
                raise self.g.error(
                    node,
                    f"operator type '{node.op_type}' is not supported by the MCU lowering",
                    hint=f"the firmware path supports {SUPPORTED}; change the model or add a kernel",
                )
            handler(node)
        output = self._graph_output()
        tensors = {name: t for name, t in self.tensors.items() if name == t.name}  # drop view aliases
        return IntGraph(tensors, self.layers, self.input_name, output, meta=self._meta())

    def _model_input(self) -> Any:
        """The graph input that is not an initializer (older exporters list weights as inputs)."""
        inputs = [i for i in self.g.graph.input if i.name not in self.g.inits]
        if len(inputs) != 1:
            raise ArtifactError(f"the model must have one input, it has {len(inputs)}", path=self.g.path)
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
                path=self.g.path,
            )
        consumers = [n for n in self.g.consumers[graph_input.name] if n.op_type == "QuantizeLinear"]
        if len(consumers) != 1 or len(self.g.consumers[graph_input.name]) != 1:
            raise ArtifactError(
                f"the model input '{graph_input.name}' is not quantized by one QuantizeLinear",
                path=self.g.path,
                hint="quantize the model with onnxruntime quantize_static(quant_format=QuantFormat.QDQ)",
            )
        q_node = consumers[0]
        scale, zero_point, dtype = self._qparams(q_node)
        self.input_dtype = dtype
        _, c, h, w = dims
        self.input_name = q_node.output[0]
        self.tensors[self.input_name] = QTensor(self.input_name, (h, w, c), scale, zero_point)
        self.done.add(id(q_node))

    def _graph_output(self) -> str:
        names = self.g.output_names()
        if len(names) != 1:
            raise ArtifactError(f"the model must have one output, it has {len(names)}: {names}", path=self.g.path)
        node = self.g.producer.get(names[0])
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.tensors:
            raise ArtifactError(
                f"the model output '{names[0]}' is not the DequantizeLinear of an int8 tensor",
                path=self.g.path,
                hint="quantize the model with onnxruntime quantize_static(quant_format=QuantFormat.QDQ)",
            )
        return self.tensors[node.input[0]].name

    # ------------------------------------------------------------ Q/DQ nodes
    def _qparams(self, node: Any) -> tuple[float, int, str]:
        scale = self.g.const(node.input[1])
        zero_point = self.g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or scale.size != 1:
            raise self.g.error(node, "activations must have one constant (per-tensor) scale")
        if zero_point is None:
            zero_point = np.zeros((), dtype=np.uint8)
        if zero_point.dtype == np.uint8:
            return float(scale.ravel()[0]), int(zero_point.ravel()[0]) - 128, "uint8"
        if zero_point.dtype == np.int8:
            return float(scale.ravel()[0]), int(zero_point.ravel()[0]), "int8"
        raise self.g.error(node, f"activations must be int8 or uint8, not {zero_point.dtype}")

    def _quantize(self, node: Any) -> None:
        source = self.value_of.get(node.input[0])
        if source is None:
            raise self.g.error(node, "quantizes a tensor that no supported node produced")
        scale, zero_point, _ = self._qparams(node)
        tensor = self.tensors[source]
        if not (np.isclose(scale, tensor.scale, rtol=1e-6, atol=0) and zero_point == tensor.zero_point):
            raise self.g.error(node, "requantizes a tensor to new parameters without an operator in between")
        self._alias(node.output[0], source)

    def _dequantize(self, node: Any) -> None:
        if self.g.const(node.input[0]) is not None:
            return  # a constant (weights, bias): read by its consumer
        if node.input[0] not in self.tensors:
            raise self.g.error(node, "dequantizes a tensor that no supported node produced")
        self.value_of[node.output[0]] = node.input[0]

    def _alias(self, name: str, source: str) -> None:
        self.tensors[name] = self.tensors[source]
        self.value_of[name] = source

    # ---------------------------------------------------------------- helpers
    def _value(self, node: Any, name: str) -> QTensor:
        source = self.value_of.get(name)
        if source is None:
            raise self.g.error(
                node,
                f"input '{name}' is not a dequantized int8 activation",
                hint="every activation input must come through QuantizeLinear/DequantizeLinear (QDQ format)",
            )
        return self.tensors[source]

    def _output(self, node: Any, shape: tuple[int, ...]) -> tuple[QTensor, int, int]:
        """Follow the float result through Relu/Clip to its QuantizeLinear: (tensor, act_min, act_max)."""
        lo, hi = -np.inf, np.inf
        current = node.output[0]
        while True:
            consumers = self.g.consumers.get(current, [])
            if len(consumers) != 1:
                raise self.g.error(
                    node, f"its float output '{current}' feeds {len(consumers)} nodes instead of one QuantizeLinear"
                )
            nxt = consumers[0]
            if nxt.op_type == "QuantizeLinear":
                break
            if nxt.op_type not in ("Relu", "Clip"):
                raise self.g.error(node, f"its output goes to {node_label(nxt)} without being quantized")
            clip_lo, clip_hi = self._clip_bounds(nxt)
            lo, hi = max(lo, clip_lo), min(hi, clip_hi)
            self.done.add(id(nxt))
            current = nxt.output[0]
        scale, zero_point, _ = self._qparams(nxt)
        self.done.add(id(nxt))
        name = nxt.output[0]
        tensor = QTensor(name, shape, scale, zero_point)
        self.tensors[name] = tensor
        act_min = -128 if lo == -np.inf else max(-128, quantize_value(lo, scale, zero_point))
        act_max = 127 if hi == np.inf else min(127, quantize_value(hi, scale, zero_point))
        return tensor, act_min, act_max

    def _clip_bounds(self, node: Any) -> tuple[float, float]:
        if node.op_type == "Relu":
            return 0.0, np.inf
        lo = self.g.attr(node, "min", -np.inf)
        hi = self.g.attr(node, "max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(self._float_const(node, node.input[1]))
        if len(node.input) > 2 and node.input[2]:
            hi = float(self._float_const(node, node.input[2]))
        return float(lo), float(hi)

    def _float_const(self, node: Any, name: str) -> np.ndarray:
        value = self.g.const(name)
        if value is not None:
            return value.astype(np.float64)
        producer = self.g.producer.get(name)
        if producer is not None and producer.op_type == "DequantizeLinear":
            q, scale, zero_point, _ = self._dq_const(node, name)
            return (q.astype(np.float64) - zero_point) * scale
        raise self.g.error(node, f"input '{name}' must be a constant")

    def _dq_const(self, node: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """A constant behind a DequantizeLinear: (integers, scale, zero point, axis)."""
        producer = self.g.producer.get(name)
        if producer is None or producer.op_type != "DequantizeLinear":
            raise self.g.error(node, f"input '{name}' is not a quantized constant (DequantizeLinear of an initializer)")
        q = self.g.const(producer.input[0])
        scale = self.g.const(producer.input[1])
        if q is None or scale is None:
            raise self.g.error(node, f"input '{name}' is not a quantized constant")
        zero_point = self.g.const(producer.input[2]) if len(producer.input) > 2 and producer.input[2] else None
        zero_point = np.zeros_like(scale, dtype=np.int64) if zero_point is None else zero_point.astype(np.int64)
        return q, scale.astype(np.float64), zero_point, int(self.g.attr(producer, "axis", 1))

    def _weights(self, node: Any, name: str, out_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """int8 weights and per-output-channel float scales (zero points must be 0)."""
        q, scale, zero_point, _ = self._dq_const(node, name)
        if q.dtype != np.int8:
            raise self.g.error(node, f"weights '{name}' are {q.dtype}, the MCU kernels need int8")
        if np.any(zero_point != 0):
            raise self.g.error(
                node,
                f"weights '{name}' are not symmetric (non-zero zero point)",
                hint="quantize with WeightSymmetric=True",
            )
        scale = np.broadcast_to(scale.ravel(), (out_channels,)) if scale.size in (1, out_channels) else None
        if scale is None:
            raise self.g.error(node, f"weights '{name}' have a scale that is neither per-tensor nor per-output-channel")
        return q, np.array(scale, dtype=np.float64)

    def _bias(self, node: Any, name: str | None, out_channels: int, bias_scale: np.ndarray) -> np.ndarray:
        if not name:
            return np.zeros(out_channels, dtype=np.int32)
        value = self.g.const(name)
        if value is not None:  # a float bias left unquantized
            q = np.round(value.astype(np.float64) / bias_scale)
        else:
            q, _, zero_point, _ = self._dq_const(node, name)
            if np.any(zero_point != 0):
                raise self.g.error(node, f"bias '{name}' has a non-zero zero point")
        q = np.asarray(q, dtype=np.int64).ravel()
        if q.size != out_channels or np.any(np.abs(q) >= 2**31):
            raise self.g.error(node, f"bias '{name}' must be {out_channels} int32 values")
        return q.astype(np.int32)

    def _requant(self, real: np.ndarray) -> dict[str, np.ndarray]:
        mult, shift = quantize_multipliers(real)
        return {"multiplier": mult, "shift": shift}

    def _add_layer(self, node: Any, op: str, inputs: list[QTensor], output: QTensor, attrs: dict, arrays: dict) -> None:
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

    def _spatial(self, node: Any, tensor: QTensor, kernel: list[int]) -> tuple[list[int], list[int], int, int]:
        """Strides, pads (top, left, bottom, right) and output H, W of a 2-D window op."""
        if len(tensor.shape) != 3:
            raise self.g.error(node, f"expects a feature map, got shape {tensor.shape}")
        if self.g.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.g.error(node, "auto_pad is not supported", hint="export with explicit pads")
        if any(d != 1 for d in self.g.attr(node, "dilations", [1, 1])):
            raise self.g.error(node, "dilated windows are not supported")
        if self.g.attr(node, "ceil_mode", 0):
            raise self.g.error(node, "ceil_mode=1 is not supported")
        strides = list(self.g.attr(node, "strides", [1, 1]))
        pads = list(self.g.attr(node, "pads", [0, 0, 0, 0]))
        h, w, _ = tensor.shape
        out_h = (h + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
        out_w = (w + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
        if out_h <= 0 or out_w <= 0:
            raise self.g.error(node, f"the window {kernel} does not fit the {h}x{w} input")
        return strides, [pads[0], pads[1], pads[2], pads[3]], out_h, out_w

    # ------------------------------------------------------------ operators
    def _conv(self, node: Any) -> None:
        x = self._value(node, node.input[0])
        q_w, _, _, _ = self._dq_const(node, node.input[1])
        out_c, cin_per_group, kh, kw = q_w.shape
        group = int(self.g.attr(node, "group", 1))
        in_c = x.shape[-1]
        strides, pads, out_h, out_w = self._spatial(node, x, [kh, kw])
        weights, w_scale = self._weights(node, node.input[1], out_c)
        bias = self._bias(node, node.input[2] if len(node.input) > 2 else None, out_c, x.scale * w_scale)
        out, act_min, act_max = self._output(node, (out_h, out_w, out_c))
        attrs = {"kernel": [kh, kw], "stride": strides, "pads": pads, "act_min": act_min, "act_max": act_max}
        arrays = {"bias": bias, **self._requant(x.scale * w_scale / out.scale)}
        if group == 1 and cin_per_group == in_c:
            arrays["weights"] = np.ascontiguousarray(weights.transpose(0, 2, 3, 1))
            self._add_layer(node, "conv2d", [x], out, attrs, arrays)
        elif group == in_c and cin_per_group == 1 and out_c % in_c == 0:
            arrays["weights"] = np.ascontiguousarray(weights[:, 0].transpose(1, 2, 0))
            attrs["depth_multiplier"] = out_c // in_c
            self._add_layer(node, "depthwise_conv2d", [x], out, attrs, arrays)
        else:
            raise self.g.error(
                node,
                f"grouped convolution (group={group}, {in_c} input channels) is not supported",
                hint="use group=1 or a depthwise convolution (group = input channels)",
            )

    def _fully_connected(self, node: Any, x: QTensor, weights: np.ndarray, w_scale: np.ndarray, bias_name: str | None):
        out_c, k = weights.shape
        if x.size != k:
            raise self.g.error(node, f"expects {k} input features, the input tensor has {x.size} ({x.shape})")
        if len(x.shape) == 3 and x.shape[0] * x.shape[1] > 1:
            h, w, c = x.shape  # ONNX flattened C,H,W; the firmware stores H,W,C
            weights = weights.reshape(out_c, c, h, w).transpose(0, 2, 3, 1).reshape(out_c, k)
        bias = self._bias(node, bias_name, out_c, x.scale * w_scale)
        out, act_min, act_max = self._output(node, (out_c,))
        arrays = {
            "weights": np.ascontiguousarray(weights),
            "bias": bias,
            **self._requant(x.scale * w_scale / out.scale),
        }
        self._add_layer(node, "fully_connected", [x], out, {"act_min": act_min, "act_max": act_max}, arrays)

    def _gemm(self, node: Any) -> None:
        if (
            self.g.attr(node, "transA", 0)
            or self.g.attr(node, "alpha", 1.0) != 1.0
            or self.g.attr(node, "beta", 1.0) != 1.0
        ):
            raise self.g.error(node, "only Gemm with transA=0, alpha=1, beta=1 is supported")
        x = self._value(node, node.input[0])
        q_w, _, _, axis = self._dq_const(node, node.input[1])
        trans_b = int(self.g.attr(node, "transB", 0))
        out_c = q_w.shape[0] if trans_b else q_w.shape[1]
        weights, w_scale = self._weights(node, node.input[1], out_c)
        if not trans_b:
            weights = weights.T
        self._fully_connected(node, x, weights, w_scale, node.input[2] if len(node.input) > 2 else None)

    def _matmul(self, node: Any) -> None:
        x = self._value(node, node.input[0])
        q_w, _, _, _ = self._dq_const(node, node.input[1])
        if q_w.ndim != 2:
            raise self.g.error(node, "MatMul needs a 2-D constant right operand")
        weights, w_scale = self._weights(node, node.input[1], q_w.shape[1])
        self._fully_connected(node, x, weights.T, w_scale, None)

    def _max_pool(self, node: Any) -> None:
        x = self._value(node, node.input[0])
        kernel = list(self.g.attr(node, "kernel_shape"))
        if self.g.attr(node, "storage_order", 0) or len(node.output) > 1 and node.output[1]:
            raise self.g.error(node, "MaxPool with indices or column-major storage is not supported")
        strides, pads, out_h, out_w = self._spatial(node, x, kernel)
        out, act_min, act_max = self._output(node, (out_h, out_w, x.shape[2]))
        if not (np.isclose(out.scale, x.scale, rtol=1e-6, atol=0) and out.zero_point == x.zero_point):
            raise self.g.error(node, "MaxPool must keep its input's scale and zero point (as onnxruntime does)")
        attrs = {"kernel": kernel, "stride": strides, "pads": pads, "act_min": act_min, "act_max": act_max}
        self._add_layer(node, "max_pool", [x], out, attrs, {})

    def _avg_pool(self, node: Any) -> None:
        x = self._value(node, node.input[0])
        kernel = list(self.g.attr(node, "kernel_shape"))
        strides, pads, out_h, out_w = self._spatial(node, x, kernel)
        if any(pads) and not self.g.attr(node, "count_include_pad", 0):
            raise self.g.error(
                node,
                "padded AveragePool with count_include_pad=0 is not supported",
                hint="use padding 0 or count_include_pad=True",
            )
        out, act_min, act_max = self._output(node, (out_h, out_w, x.shape[2]))
        count = kernel[0] * kernel[1]
        attrs = {"kernel": kernel, "stride": strides, "pads": pads, "act_min": act_min, "act_max": act_max}
        arrays = self._requant(np.array([x.scale / (out.scale * count)]))
        self._add_layer(node, "avg_pool", [x], out, attrs, arrays)

    def _global_avg_pool(self, node: Any) -> None:
        x = self._value(node, node.input[0])
        if len(x.shape) != 3:
            raise self.g.error(node, f"expects a feature map, got shape {x.shape}")
        h, w, c = x.shape
        out, act_min, act_max = self._output(node, (1, 1, c))
        arrays = self._requant(np.array([x.scale / (out.scale * h * w)]))
        self._add_layer(node, "global_avg_pool", [x], out, {"act_min": act_min, "act_max": act_max}, arrays)

    def _reduce_mean(self, node: Any) -> None:
        axes = self.g.attr(node, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.g.const(node.input[1])
        axes = sorted(int(a) % 4 for a in (axes if axes is not None else []))
        if axes != [2, 3] or not self.g.attr(node, "keepdims", 1):
            raise self.g.error(
                node, "only ReduceMean over H and W with keepdims=1 (global average pooling) is supported"
            )
        self._global_avg_pool(node)

    def _add(self, node: Any) -> None:
        a = self._value(node, node.input[0])
        b = self._value(node, node.input[1])
        if a.shape != b.shape:
            raise self.g.error(node, f"broadcasting Add is not supported ({a.shape} + {b.shape})")
        out, act_min, act_max = self._output(node, a.shape)
        twice_max = 2.0 * max(a.scale, b.scale)
        reals = [a.scale / twice_max, b.scale / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT) * out.scale)]
        pairs = [quantize_multiplier(r) for r in reals]
        arrays = {
            "multiplier": np.array([p[0] for p in pairs], dtype=np.int32),
            "shift": np.array([p[1] for p in pairs], dtype=np.int32),
        }
        attrs = {"left_shift": ADD_LEFT_SHIFT, "act_min": act_min, "act_max": act_max}
        self._add_layer(node, "add", [a, b], out, attrs, arrays)

    def _activation(self, node: Any) -> None:
        """A Relu/Clip between a DequantizeLinear and a QuantizeLinear of the same parameters: a clamp."""
        x = self._value(node, node.input[0])
        producer = next((layer for layer in self.layers if layer.output == x.name), None)
        if producer is None or self._readers(x.name) != 1:
            raise self.g.error(
                node, "a standalone activation is supported only right after the one layer that produces its input"
            )
        out, act_min, act_max = self._output(node, x.shape)
        if not (np.isclose(out.scale, x.scale, rtol=1e-6, atol=0) and out.zero_point == x.zero_point):
            raise self.g.error(node, "a standalone activation must keep its input's scale and zero point")
        lo, hi = self._clip_bounds(node)
        if lo > -np.inf:
            act_min = max(act_min, quantize_value(lo, x.scale, x.zero_point))
        if hi < np.inf:
            act_max = min(act_max, quantize_value(hi, x.scale, x.zero_point))
        producer.attrs["act_min"] = max(producer.attrs["act_min"], act_min)
        producer.attrs["act_max"] = min(producer.attrs["act_max"], act_max)
        del self.tensors[out.name]
        self._alias(out.name, x.name)

    def _readers(self, tensor: str) -> int:
        """How many nodes read the int8 tensor (through its DequantizeLinear outputs)."""
        floats = [name for name, source in self.value_of.items() if source == tensor and name != tensor]
        return sum(len(self.g.consumers.get(name, [])) for name in floats)

    def _view(self, node: Any) -> None:
        """Flatten/Reshape/Identity/Dropout: the same int8 data under another name."""
        x = self._value(node, node.input[0])
        if node.op_type in ("Flatten", "Reshape", "Squeeze"):
            self._check_flatten(node, x)
        self.value_of[node.output[0]] = x.name

    def _check_flatten(self, node: Any, x: QTensor) -> None:
        """A view must flatten to (N, features) or drop 1x1 spatial axes; anything else reorders data."""
        if node.op_type == "Flatten":
            if int(self.g.attr(node, "axis", 1)) != 1:
                raise self.g.error(node, "only Flatten(axis=1) is supported")
            return
        if node.op_type == "Reshape":
            shape = self.g.const(node.input[1])
            if shape is not None and shape.size == 2 and int(shape[1]) in (-1, x.size):
                return
            raise self.g.error(node, f"only a Reshape to (N, {x.size}) is supported, not {shape}")
        if len(x.shape) == 3 and x.shape[0] * x.shape[1] != 1:
            raise self.g.error(node, f"Squeeze of a {x.shape} map is not supported")
