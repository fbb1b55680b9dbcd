"""Elementwise add with its own rescale (TFLite int8 ADD): ONNX Add lowering, golden, mk_add.

IR ``add``: two inputs of the same shape; multiplier, shift of shape (3,) for input 1, input 2
and the output; attrs left_shift (``ADD_LEFT_SHIFT``), act_min, act_max. Each input
(x - zp) << left_shift is scaled by its multiplier to twice the larger input scale, the sum by
the output multiplier. Kernel: firmware/include/kernels/mk_add.h (SMMULR when every shift is
a right shift, the exact form otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, requantize
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, single_step
from malak_pipe.mcu.ops.reference import input_zero_point
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

ADD_LEFT_SHIFT = 20

ADD = KernelSpec(
    "add",
    "mk_add",
    ("in", "in2", "out"),
    (),
    (
        "n",
        "zp_a",
        "zp_b",
        "out_zp",
        "mult_a",
        "shift_a",
        "mult_b",
        "shift_b",
        "mult_out",
        "shift_out",
        "left_shift",
        "act_min",
        "act_max",
    ),
)


def add_rescale(a: QTensor, b: QTensor, out: QTensor) -> dict[str, np.ndarray]:
    """The multiplier and shift arrays (input 1, input 2, output) of ``a + b -> out``."""
    twice_max = 2.0 * max(a.scale, b.scale)
    reals = [a.scale / twice_max, b.scale / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT) * out.scale)]
    pairs = [quantize_multiplier(r) for r in reals]
    return {
        "multiplier": np.array([p[0] for p in pairs], dtype=np.int32),
        "shift": np.array([p[1] for p in pairs], dtype=np.int32),
    }


def lower_add(lw: Lowering, node: Any) -> None:
    a = lw.value(node, node.input[0])
    b = lw.value(node, node.input[1])
    if a.shape != b.shape:
        raise lw.onnx.error(node, f"broadcasting Add is not supported ({a.shape} + {b.shape})")
    out, act_min, act_max = lw.output(node, a.shape)
    attrs = {"left_shift": ADD_LEFT_SHIFT, "act_min": act_min, "act_max": act_max}
    lw.add_layer(node, "add", [a, b], out, attrs, add_rescale(a, b, out))


def add_golden(graph: IntGraph, layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    za, zb = input_zero_point(graph, layer, 0), input_zero_point(graph, layer, 1)
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    left = 1 << layer.attrs["left_shift"]
    sa = multiply_by_quantized_multiplier((a.astype(np.int64) - za) * left, mult[0], shift[0])
    sb = multiply_by_quantized_multiplier((b.astype(np.int64) - zb) * left, mult[1], shift[1])
    return requantize(sa + sb, mult[2], shift[2], out.zero_point, layer.attrs["act_min"], layer.attrs["act_max"])


def add_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    a, b = (graph.tensors[name] for name in layer.inputs)
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    ints = {
        "n": out.size,
        "zp_a": a.zero_point,
        "zp_b": b.zero_point,
        "out_zp": out.zero_point,
        "mult_a": int(mult[0]),
        "shift_a": int(shift[0]),
        "mult_b": int(mult[1]),
        "shift_b": int(shift[1]),
        "mult_out": int(mult[2]),
        "shift_out": int(shift[2]),
        "left_shift": layer.attrs["left_shift"],
        "act_min": layer.attrs["act_min"],
        "act_max": layer.attrs["act_max"],
    }
    return single_step(ADD, graph, layer, ints, reason="same-shape elementwise add, each input rescaled")


FAMILY = OpFamily(
    name="add",
    onnx_ops=(OnnxOp("Add", lower_add, produces=("add",)),),
    int_ops=(IntOp("add", add_golden, add_step),),
    kernels=(ADD,),
    headers=("kernels/mk_add.h",),
)
