"""Concatenation with the requantization of each input: ONNX Concat lowering, golden, mk_concat.

IR ``concat``: n inputs; attrs outer, inners (per input), act_min, act_max; array ``tables`` int8
(n, 256): the output code of each input code. Storage-wise a concatenation copies, for each of
``outer`` rows, ``inners[i]`` values of input i after those of the inputs before it: channels
of channels-last maps (outer = H * W), rows or columns (ONNX axes 2, 3), or whole flattened
vectors (outer = 1; the logical index of the result records where each feature went, so a
fully connected layer after it reads them in any order). Each input's table is its values,
as the QDQ graph computes them in float (the activation chain before the concat included),
quantized to the output's parameters and clamped: the same bytes for the golden reference and
the firmware. The step builder emits one kernel call per input, each writing its part of the
output. Kernel: firmware/include/kernels/mk_concat.h (a plain copy where the table is the
identity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step
from malak_pipe.mcu.layout import map_index, map_shape_of
from malak_pipe.mcu.ops.lut import by_byte
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily
from malak_pipe.mcu.values import CODES, Value, quantize

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

CONCAT = KernelSpec(
    "concat", "mk_concat", ("in", "out"), (("table", "int8_t"),), ("outer", "inner", "out_inner", "offset", "copy")
)
STORAGE_AXIS = {4: {1: 2, 2: 0, 3: 1}, 3: {1: 2, 2: 1}}  # logical axis -> channels-last storage axis


def _map_layout(values: list[Value], axis: int) -> tuple[int, list[int], tuple, np.ndarray] | None:
    """outer, inners, storage shape and index of a concatenation of channels-last maps."""
    rank = values[0].index.ndim
    shapes = [map_shape_of(v.index) for v in values]
    if rank not in STORAGE_AXIS or axis not in STORAGE_AXIS[rank] or any(s is None for s in shapes):
        return None
    if any(v.index.ndim != rank for v in values):
        return None
    storage_axis = STORAGE_AXIS[rank][axis]
    others = {tuple(d for i, d in enumerate(s) if i != storage_axis) for s in shapes}
    if len(others) != 1:
        return None
    out = list(shapes[0])
    out[storage_axis] = sum(s[storage_axis] for s in shapes)
    outer = int(np.prod(out[:storage_axis]))
    inners = [int(np.prod(s[storage_axis:])) for s in shapes]
    return outer, inners, tuple(out), map_index(tuple(out), rank)


def _flat_layout(values: list[Value], axis: int) -> tuple[int, list[int], tuple, np.ndarray] | None:
    """outer (1), inners, storage shape and index of a concatenation of (1, K) vectors in any order."""
    if axis != 1 or any(v.index.ndim != 2 for v in values):
        return None
    sizes = [v.tensor.size for v in values]
    offsets = np.cumsum([0, *sizes[:-1]])
    index = np.concatenate([v.index.ravel() + off for v, off in zip(values, offsets, strict=True)])
    return 1, sizes, (sum(sizes),), index.reshape(1, -1).astype(values[0].index.dtype)


def lower_concat(lw: Lowering, node: Any) -> None:
    values = [lw.function(node, name) for name in node.input]
    axis = int(lw.onnx.attr(node, "axis", 1)) % values[0].index.ndim
    layout = _map_layout(values, axis) or _flat_layout(values, axis)
    if layout is None:
        shapes = [list(v.index.shape) for v in values]
        raise lw.onnx.error(
            node,
            f"cannot concatenate logical shapes {shapes} on axis {axis} without moving bytes",
            hint="concatenate N x C x H x W maps (any axis but the batch) or N x K vectors on axis 1",
        )
    outer, inners, storage, index = layout
    tensors = [v.tensor for v in values]

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        tables = np.stack([np.clip(quantize(v.values(), out.scale, out.zero_point), act_min, act_max) for v in values])
        attrs = {"outer": outer, "inners": inners, "act_min": act_min, "act_max": act_max}
        lw.add_layer(node, "concat", tensors, out, attrs, {"tables": tables.astype(np.int8)})

    first = tensors[0]
    same = all(v.fn is None and v.tensor.same_params(first.scale, first.zero_point) for v in values)
    lw.produce(node, storage, index, emit, natural=(first.scale, first.zero_point) if same else None)


def concat_golden(graph: IntGraph, layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    n, outer = inputs[0].shape[0], layer.attrs["outer"]
    tables = layer.arrays["tables"]
    parts = [tables[i][x.astype(np.int64) + 128].reshape(n, outer, -1) for i, x in enumerate(inputs)]
    return np.concatenate(parts, axis=2).reshape(n, *graph.tensors[layer.output].shape).astype(np.int8)


def concat_steps(graph: IntGraph, layer: Layer, options: CodegenOptions) -> list[Step]:
    """One kernel call per input, each writing its part of the output."""
    inners = layer.attrs["inners"]
    offsets = np.cumsum([0, *inners[:-1]])
    steps = []
    for i, name in enumerate(layer.inputs):
        table = layer.arrays["tables"][i]
        copy = bool(np.array_equal(table, CODES))
        ints = {"outer": layer.attrs["outer"], "inner": inners[i], "out_inner": sum(inners), "offset": int(offsets[i])}
        ints["copy"] = int(copy)
        why = "copied" if copy else "requantized through its 256-entry table"
        reason = f"part {i + 1} of {len(inners)}: {layer.attrs['outer']} rows of {inners[i]} values {why}"
        steps.append(
            Step(CONCAT, [layer.name], [layer.op], [name], layer.output, ints, {"table": by_byte(table)}, reason=reason)
        )
    return steps


FAMILY = OpFamily(
    name="concat",
    onnx_ops=(OnnxOp("Concat", lower_concat, produces=("concat",)),),
    int_ops=(IntOp("concat", concat_golden, concat_steps),),
    kernels=(CONCAT,),
    headers=("kernels/mk_concat.h",),
)
