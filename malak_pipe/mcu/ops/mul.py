"""Elementwise multiply of two int8 tensors (TFLite int8 MUL), broadcasting: ONNX Mul lowering,
golden, mk_mul.

IR ``mul``: two inputs; attrs a_shape, b_shape, shape (:mod:`malak_pipe.mcu.ops.binary`: e.g. an
(H, W, C) map times a (1, 1, C) squeeze-and-excitation gate), act_min, act_max; multiplier,
shift of shape (1,) for input scale 1 x input scale 2 / output scale. The product
(a - za) * (b - zb) (|.| <= 2^16) is requantized like an accumulator (rounded once). A Mul of
two functions of one tensor (x * sigmoid(x)) is a table instead
(:mod:`malak_pipe.mcu.ops.activations`).
Kernel: firmware/include/kernels/mk_mul.h (the fast SMMLA requantization where exact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fixedpoint import requantize
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, channel_constants, record_shift, single_step
from malak_pipe.mcu.ops import binary, onnx_params
from malak_pipe.mcu.ops.reference import input_zero_point
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

PRODUCT_BOUND = 256 * 256  # |(a - za) * (b - zb)| < 2^16

MUL = KernelSpec(
    "mul",
    "mk_mul",
    ("in", "in2", "out"),
    (),
    (*binary.STRIDE_INTS, "zp_a", "zp_b", "out_zp", "mult", "off", "shift", "fast", "lsh", "act_min", "act_max"),
)


def lower_mul(lw: Lowering, node: Any) -> None:
    """ONNX Mul of two int8 tensors (broadcasting) -> mul."""
    ops = binary.operands(lw, node)

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        attrs = {**ops.attrs(), "act_min": act_min, "act_max": act_max}
        arrays = onnx_params.requant(np.array([ops.a.scale * ops.b.scale / out.scale]))
        lw.add_layer(node, "mul", [ops.a, ops.b], out, attrs, arrays)

    lw.produce(node, ops.storage, ops.index, emit)


def mul_golden(graph: IntGraph, layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    za, zb = input_zero_point(graph, layer, 0), input_zero_point(graph, layer, 1)
    out = graph.tensors[layer.output]
    a, b = binary.broadcast_inputs(layer, a, b)
    arrays = layer.arrays
    result = requantize(
        (a - za) * (b - zb), arrays["multiplier"][0], arrays["shift"][0], out.zero_point,
        layer.attrs["act_min"], layer.attrs["act_max"],
    )  # fmt: skip
    return result.reshape(len(result), *out.shape)


def mul_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    a, b = (graph.tensors[name] for name in layer.inputs)
    out = graph.tensors[layer.output]
    chan, fast, lsh = channel_constants(
        np.zeros(1, dtype=np.int64), layer.arrays["multiplier"], layer.arrays["shift"], out.zero_point,
        np.array([PRODUCT_BOUND]),
    )  # fmt: skip
    ints = binary.stride_ints(layer, graph)
    ints.update({"zp_a": a.zero_point, "zp_b": b.zero_point, "out_zp": out.zero_point})
    shift = record_shift(chan[0], fast)
    ints.update({"mult": int(chan[0, 1]), "off": int(chan[0, 2]) if fast else 0, "shift": shift, "fast": int(fast)})
    ints.update({"lsh": lsh, "act_min": layer.attrs["act_min"], "act_max": layer.attrs["act_max"]})
    same = layer.attrs["a_shape"] == layer.attrs["b_shape"]
    reason = "same-shape elementwise multiply" if same else "multiply broadcasting by strides"
    return single_step(MUL, graph, layer, ints, reason=reason + (", fast requantization" if fast else ""))


FAMILY = OpFamily(
    name="mul",
    onnx_ops=(OnnxOp("Mul", lower_mul, produces=("mul",)),),
    int_ops=(IntOp("mul", mul_golden, mul_step),),
    kernels=(MUL,),
    headers=("kernels/mk_mul.h",),
)
