"""Activations that are clamps (ONNX Relu, Clip): folded into the layer that produces their input.

Right after a compute node (in float, before its QuantizeLinear) the lowering driver follows
the result through them and narrows the layer's act_min/act_max (``clamps`` of the family).
Standing alone between a DequantizeLinear and a QuantizeLinear of the same parameters (as
onnxruntime leaves a Relu after an Add), :func:`lower_activation` narrows the clamp of the
one layer producing its input. Neither adds a layer, a golden reference or a kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.fixedpoint import quantize_value
from malak_pipe.mcu.ops import onnx_params
from malak_pipe.mcu.ops.registry import OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering


def relu_bounds(lw: Lowering, node: Any) -> tuple[float, float]:
    return 0.0, np.inf


def clip_bounds(lw: Lowering, node: Any) -> tuple[float, float]:
    """Clip's float bounds: attributes (opset < 11) or constant inputs (opset >= 11)."""
    onnx = lw.onnx
    lo = onnx.attr(node, "min", -np.inf)
    hi = onnx.attr(node, "max", np.inf)
    if onnx_params.optional_input(node, 1):
        lo = float(onnx_params.float_const(onnx, node, node.input[1]))
    if onnx_params.optional_input(node, 2):
        hi = float(onnx_params.float_const(onnx, node, node.input[2]))
    return float(lo), float(hi)


CLAMPS = {"Relu": relu_bounds, "Clip": clip_bounds}


def lower_activation(lw: Lowering, node: Any) -> None:
    """A Relu/Clip between a DequantizeLinear and a QuantizeLinear of the same parameters: a clamp."""
    x = lw.value(node, node.input[0])
    producer = lw.producer_layer(x.name)
    if producer is None or lw.readers(x.name) != 1:
        raise lw.onnx.error(
            node, "a standalone activation is supported only right after the one layer that produces its input"
        )
    out, act_min, act_max = lw.output(node, x.shape)
    if not x.same_params(out.scale, out.zero_point):
        raise lw.onnx.error(node, "a standalone activation must keep its input's scale and zero point")
    lo, hi = CLAMPS[node.op_type](lw, node)
    if lo > -np.inf:
        act_min = max(act_min, quantize_value(lo, x.scale, x.zero_point))
    if hi < np.inf:
        act_max = min(act_max, quantize_value(hi, x.scale, x.zero_point))
    producer.attrs["act_min"] = max(producer.attrs["act_min"], act_min)
    producer.attrs["act_max"] = min(producer.attrs["act_max"], act_max)
    del lw.tensors[out.name]
    lw.alias(out.name, x.name)


FAMILY = OpFamily(
    name="activations",
    onnx_ops=tuple(OnnxOp(op_type, lower_activation) for op_type in CLAMPS),
    clamps=CLAMPS,
)
