"""Constant padding with the input's zero point (or any constant): ONNX Pad lowering, golden, mk_pad.

IR ``pad``: one channels-last map input; attrs pads (top, left, bottom, right, channels before,
channels after), value (the int8 code of the padding constant in the input's parameters: the
zero point for 0.0), act_min, act_max. The output keeps the input's scale and zero point (a
QuantizeLinear to others after it becomes a table). ONNX pads are (begin..., end...) over
N x C x H x W (or N x C x L); the batch axis cannot be padded, only ``constant`` mode is
supported. Kernel: firmware/include/kernels/mk_pad.h (rows copied whole when no channel is
padded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, io_ints, single_step
from malak_pipe.mcu.layout import map_index
from malak_pipe.mcu.ops import onnx_params
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily
from malak_pipe.mcu.values import quantize

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

PAD = KernelSpec(
    "pad",
    "mk_pad",
    ("in", "out"),
    (),
    ("in_h", "in_w", "in_c", "pt", "pl", "pb", "pr", "cf", "cb", "value", "act_min", "act_max"),
)


def _onnx_pads(lw: Lowering, node: Any, rank: int) -> list[int]:
    """The ONNX pads (begin..., end...) over all ``rank`` axes (opset 18 ``axes`` input applied)."""
    name = onnx_params.optional_input(node, 1)
    pads = lw.onnx.const(name) if name else lw.onnx.attr(node, "pads", None)
    if pads is None:
        raise lw.onnx.error(node, "Pad needs constant pads")
    pads = [int(p) for p in np.asarray(pads).ravel()]
    axes_name = onnx_params.optional_input(node, 3)
    if axes_name is None:
        return pads
    axes = [int(a) % rank for a in np.asarray(lw.onnx.const(axes_name)).ravel()]
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    return full


def lower_pad(lw: Lowering, node: Any) -> None:
    onnx = lw.onnx
    x, rank = lw.map_input(node, node.input[0])
    mode = onnx.attr(node, "mode", b"constant")
    if mode not in (b"constant", "constant"):
        raise onnx.error(node, f"Pad mode {mode!r} is not supported", hint="use constant padding")
    pads = _onnx_pads(lw, node, rank)
    begin, end = pads[:rank], pads[rank:]
    if begin[0] or end[0] or min(pads) < 0:
        raise onnx.error(node, f"pads {pads}: the batch axis cannot be padded, and pads must not be negative")
    if rank == 4:
        storage_pads = [begin[2], begin[3], end[2], end[3], begin[1], end[1]]
    else:
        storage_pads = [0, begin[2], 0, end[2], begin[1], end[1]]
    name = onnx_params.optional_input(node, 2)
    value = lw.scalar(name) if name else np.float32(onnx.attr(node, "value", 0.0))
    code = int(quantize(np.array([value]), x.scale, x.zero_point)[0])
    h, w, c = x.shape
    pt, pl, pb, pr, cf, cb = storage_pads
    shape = (h + pt + pb, w + pl + pr, c + cf + cb)

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        attrs = {"pads": storage_pads, "value": code, "act_min": act_min, "act_max": act_max}
        lw.add_layer(node, "pad", [x], out, attrs, {})

    lw.produce(node, shape, map_index(shape, rank), emit, natural=(x.scale, x.zero_point), rescales=False)


def pad_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    pt, pl, pb, pr, cf, cb = layer.attrs["pads"]
    padded = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (cf, cb)), constant_values=layer.attrs["value"])
    return np.clip(padded, layer.attrs["act_min"], layer.attrs["act_max"]).astype(np.int8)


def pad_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    ints = io_ints(graph, layer)
    ints.update(dict(zip(("pt", "pl", "pb", "pr", "cf", "cb"), layer.attrs["pads"], strict=True)))
    ints["value"] = layer.attrs["value"]
    whole = "whole rows copied" if not (ints["cf"] or ints["cb"]) else "pixels copied between channel padding"
    return single_step(PAD, graph, layer, ints, reason=f"constant padding, {whole}")


FAMILY = OpFamily(
    name="pad",
    onnx_ops=(OnnxOp("Pad", lower_pad, produces=("pad",)),),
    int_ops=(IntOp("pad", pad_golden, pad_step),),
    kernels=(PAD,),
    headers=("kernels/mk_pad.h",),
)
