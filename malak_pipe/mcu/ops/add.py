"""Elementwise add and sub with their own rescale (TFLite int8 ADD / SUB), broadcasting:
ONNX Add and Sub lowering, golden, mk_add.

IR ``add``: two inputs; attrs a_shape, b_shape, shape (the operands and the output as
channels-last maps: :mod:`malak_pipe.mcu.ops.binary`), sub (1: a - b), left_shift
(``ADD_LEFT_SHIFT``), act_min, act_max; multiplier, shift of shape (3,) for input 1, input 2 and
the output. Each input (x - zp) << left_shift is scaled by its multiplier to twice the larger
input scale, the sum (or difference) by the output multiplier. Add and Sub between functions
of one tensor (x + 3) are tables instead (:mod:`malak_pipe.mcu.ops.activations`). Kernel:
firmware/include/kernels/mk_add.h (SMMULR when every shift is a right shift, the exact form
otherwise; a flat loop when no operand broadcasts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, requantize_tflite
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, single_step
from malak_pipe.mcu.ops import binary
from malak_pipe.mcu.ops.reference import input_zero_point
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

ADD_LEFT_SHIFT = 20
ADD_TABLE_MIN = 512  # outputs from which mk_add tabulates each operand's scaled values first (512 entries)
ADD_TABLE_BYTES = 2 * 256 * 4  # the two tables: 256 words per operand

ADD = KernelSpec(
    "add",
    "mk_add",
    ("in", "in2", "out", "scratch"),
    (),
    (
        *binary.STRIDE_INTS,
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
        "sub",
        "act_min",
        "act_max",
        "tables",
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
    """ONNX Add or Sub of two int8 tensors (broadcasting) -> add."""
    ops = binary.operands(lw, node)

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        attrs = {**ops.attrs(), "sub": int(node.op_type == "Sub"), "left_shift": ADD_LEFT_SHIFT}
        attrs.update({"act_min": act_min, "act_max": act_max})
        lw.add_layer(node, "add", [ops.a, ops.b], out, attrs, add_rescale(ops.a, ops.b, out))

    lw.produce(node, ops.storage, ops.index, emit)


def add_golden(graph: IntGraph, layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    za, zb = input_zero_point(graph, layer, 0), input_zero_point(graph, layer, 1)
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    left = 1 << layer.attrs["left_shift"]
    a, b = binary.broadcast_inputs(layer, a, b)
    sa = multiply_by_quantized_multiplier((a - za) * left, mult[0], shift[0])
    sb = multiply_by_quantized_multiplier((b - zb) * left, mult[1], shift[1])
    total = sa - sb if layer.attrs.get("sub") else sa + sb
    result = requantize_tflite(total, mult[2], shift[2], out.zero_point, layer.attrs["act_min"], layer.attrs["act_max"])
    return result.reshape(len(result), *out.shape)


def add_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    a, b = (graph.tensors[name] for name in layer.inputs)
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    ints = binary.stride_ints(layer, graph)
    ints.update(
        {
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
            "sub": layer.attrs.get("sub", 0),
            "act_min": layer.attrs["act_min"],
            "act_max": layer.attrs["act_max"],
        }
    )
    same = layer.attrs["a_shape"] == layer.attrs["b_shape"] == layer.attrs["shape"]
    ints["tables"] = int(same and out.size >= ADD_TABLE_MIN)
    what = "sub" if ints["sub"] else "add"
    reason = f"same-shape elementwise {what}, each input rescaled" if same else f"{what} broadcasting by strides"
    if ints["tables"]:
        reason = f"same-shape elementwise {what}, {out.size} >= {ADD_TABLE_MIN} outputs: the inputs' scaled values"
        reason += " tabulated first"
    scratch = ADD_TABLE_BYTES if ints["tables"] else 0
    return single_step(ADD, graph, layer, ints, reason=reason, scratch_bytes=scratch)


FAMILY = OpFamily(
    name="add",
    onnx_ops=(OnnxOp("Add", lower_add, produces=("add",)), OnnxOp("Sub", lower_add, produces=("add",))),
    int_ops=(IntOp("add", add_golden, add_step),),
    kernels=(ADD,),
    headers=("kernels/mk_add.h",),
)
