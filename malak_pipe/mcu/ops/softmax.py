"""Softmax with an int8 output, or left to the host: ONNX Softmax lowering, golden, mk_softmax.

IR ``softmax``: one input, read as ``rows`` vectors of ``n`` contiguous values (a vector, or the
channels of every pixel of a channels-last map: the ONNX axis must be the stored innermost one);
attrs rows, n, frac, mult, act_min, act_max; array ``exp`` int32 (256,):
exp[d] = round(2^bits * exp(-input_scale * d)), bits = min(20, 30 - ceil(log2 n)) so a row's sum
fits int32. For each row, with m its largest code, e_i = exp[m - x_i], S = sum e_i:
y_i = zero_point + floor((e_i * mult + S * 2^(frac - 1)) / (S * 2^frac)), mult = round(2^frac /
output_scale) (frac 16, fewer for tiny output scales), clamped. The golden reference and the
kernel compute exactly this (64-bit products and divisions, once per value).

With ``host_softmax`` (:func:`malak_pipe.mcu.lower.lower_onnx`; the codegen option
``softmax: host``) a Softmax whose result only reaches the model output is not lowered: the
firmware outputs its int8 input (the logits, same top-1), graph meta ``host_softmax`` says so and
the host applies softmax if it needs probabilities.
Kernel: firmware/include/kernels/mk_softmax.h.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, single_step
from malak_pipe.mcu.layout import is_storage_order, map_shape_of
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily
from malak_pipe.mcu.values import Value

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

SOFTMAX = KernelSpec(
    "softmax", "mk_softmax", ("in", "out"), (("exp", "int32_t"),), ("rows", "n", "frac", "mult", "out_zp", "act_min",
                                                                      "act_max")
)  # fmt: skip
FRAC = 16
MAX_ROW = 1 << 10


def exp_table(scale: float, n: int) -> np.ndarray:
    """exp[d] = round(2^bits * exp(-scale * d)) for d = 0..255, bits leaving room for a sum of n."""
    bits = min(20, 30 - math.ceil(math.log2(max(n, 2))))
    return np.rint(np.exp(-scale * np.arange(256, dtype=np.float64)) * (1 << bits)).astype(np.int32)


def _rows(lw: Lowering, node: Any, x: QTensor, index: np.ndarray) -> tuple[int, int]:
    """(rows, n): the softmax axis must be the innermost stored one."""
    default = -1 if lw.onnx.opset >= 13 else 1
    axis = int(lw.onnx.attr(node, "axis", default)) % index.ndim
    if index.ndim in (3, 4) and axis == 1 and map_shape_of(index) == tuple(x.shape):
        return x.shape[0] * x.shape[1], x.shape[2]
    if axis == index.ndim - 1 and is_storage_order(index, x.size):
        return x.size // index.shape[-1], index.shape[-1]
    raise lw.onnx.error(
        node, f"Softmax over axis {axis} of logical shape {list(index.shape)} is not over contiguous stored values"
    )


def _reaches_output_only(lw: Lowering, name: str) -> bool:
    """Whether float ``name`` only flows (through Q/DQ and views) to the model output."""
    if name in lw.onnx.output_names():
        return True
    consumers = lw.onnx.consumers.get(name, [])
    passing = ("QuantizeLinear", "DequantizeLinear", "Reshape", "Flatten", "Squeeze", "Identity")
    return bool(consumers) and all(c.op_type in passing and _reaches_output_only(lw, c.output[0]) for c in consumers)


def lower_softmax(lw: Lowering, node: Any) -> None:
    x, index = lw.operand(node, node.input[0])
    rows, n = _rows(lw, node, x, index)
    if n > MAX_ROW:
        raise lw.onnx.error(node, f"Softmax over {n} values: at most {MAX_ROW}")
    if lw.host_softmax and _reaches_output_only(lw, node.output[0]):
        lw.states[node.output[0]] = Value(x, index)
        lw.keep(node.output[0])
        lw.meta["host_softmax"] = True
        return

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        frac = FRAC
        while frac > 0 and round((1 << frac) / out.scale) >= 2**31:
            frac -= 1
        attrs = {"rows": rows, "n": n, "frac": frac, "mult": int(round((1 << frac) / out.scale))}
        attrs.update({"act_min": act_min, "act_max": act_max})
        lw.add_layer(node, "softmax", [x], out, attrs, {"exp": exp_table(x.scale, n)})

    lw.produce(node, x.shape, index, emit)


def softmax_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    a = layer.attrs
    rows = x.reshape(len(x), a["rows"], a["n"]).astype(np.int64)
    e = layer.arrays["exp"].astype(np.int64)[rows.max(axis=2, keepdims=True) - rows]
    den = e.sum(axis=2, keepdims=True) << a["frac"]
    q = (e * a["mult"] + (den >> 1)) // den + graph.tensors[layer.output].zero_point
    return np.clip(q, a["act_min"], a["act_max"]).astype(np.int8).reshape(x.shape)


def softmax_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    a = layer.attrs
    ints = {key: a[key] for key in ("rows", "n", "frac", "mult", "act_min", "act_max")}
    ints["out_zp"] = graph.tensors[layer.output].zero_point
    reason = "exp table, one 64-bit division per value"
    return single_step(SOFTMAX, graph, layer, ints, consts={"exp": layer.arrays["exp"]}, reason=reason)


FAMILY = OpFamily(
    name="softmax",
    onnx_ops=(OnnxOp("Softmax", lower_softmax, produces=("softmax",)),),
    int_ops=(IntOp("softmax", softmax_golden, softmax_step),),
    kernels=(SOFTMAX,),
    headers=("kernels/mk_softmax.h",),
)
