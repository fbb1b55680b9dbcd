"""Pooling: ONNX MaxPool, AveragePool, GlobalAveragePool and ReduceMean (over H and/or W, or L)
lowering, golden references, the mk_maxpool and mk_avgpool kernels. 1-D pools (N x C x L) are
2-D pools of height 1. A mean with no QuantizeLinear after it keeps its input's parameters (its
own rescale: x_scale / (out_scale * count)); a max pool is exact in its input's parameters.

IR ``max_pool``: attrs kernel, stride, pads, act_min, act_max; the output keeps the input's
scale and zero point (padding never wins). IR ``avg_pool``: the same attrs plus multiplier,
shift of shape (1,) that include 1 / window size (padding counts as zero: count_include_pad).
IR ``global_avg_pool``: multiplier, shift of shape (1,) including 1 / (H * W); attrs act_min,
act_max. Kernels: firmware/include/kernels/mk_pool.h (the global pool is mk_avgpool with the
window = the whole map). A 2x2/2 max-pool after a convolution is usually fused into the
convolution's kernel (:mod:`malak_pipe.mcu.ops.conv`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import WINDOW_INTS, KernelSpec, Step, io_ints, single_step, window_ints
from malak_pipe.mcu.layout import map_index
from malak_pipe.mcu.ops import onnx_params
from malak_pipe.mcu.ops.reference import finish, input_zero_point, pad, windows
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

MAXPOOL = KernelSpec(
    "maxpool",
    "mk_maxpool",
    ("in", "out"),
    (),
    ("in_h", "in_w", "c", "out_h", "out_w", *WINDOW_INTS, "act_min", "act_max"),
)
AVGPOOL = KernelSpec(
    "avgpool",
    "mk_avgpool",
    ("in", "out"),
    (),
    ("in_h", "in_w", "c", "out_h", "out_w", *WINDOW_INTS, "in_zp", "out_zp", "mult", "shift", "act_min", "act_max"),
)


# ---------------------------------------------------------------- lowering


def _kernel(lw: Lowering, node: Any, rank: int) -> list[int]:
    kernel, _, _ = onnx_params.window_attrs(lw.onnx, node, rank)
    if kernel is None:
        raise lw.onnx.error(node, "kernel_shape is required")
    return kernel


def lower_max_pool(lw: Lowering, node: Any) -> None:
    """MaxPool (2-D or 1-D, ceil_mode allowed): exact in the input's parameters (padding never wins)."""
    onnx = lw.onnx
    x, rank = lw.map_input(node, node.input[0])
    if onnx.attr(node, "storage_order", 0) or len(node.output) > 1 and node.output[1]:
        raise onnx.error(node, "MaxPool with indices or column-major storage is not supported")
    kernel = _kernel(lw, node, rank)
    strides, pads, out_h, out_w = onnx_params.window(onnx, node, x, kernel, rank, ceil_ok=True)

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        attrs = {"kernel": kernel, "stride": strides, "pads": pads, "act_min": act_min, "act_max": act_max}
        lw.add_layer(node, "max_pool", [x], out, attrs, {})

    shape = (out_h, out_w, x.shape[2])
    lw.produce(node, shape, map_index(shape, rank), emit, natural=(x.scale, x.zero_point), rescales=False)


def _produce_average(
    lw: Lowering, node: Any, x: QTensor, attrs: dict, shape: tuple, index: np.ndarray, mean: bool = True
) -> None:
    """An average over windows of ``attrs`` (kernel, stride, pads) with its own rescale; a ``mean``
    over the whole map is a global average pool."""
    count = attrs["kernel"][0] * attrs["kernel"][1]
    whole = mean and attrs["kernel"] == list(x.shape[:2])

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        arrays = onnx_params.requant(np.array([x.scale / (out.scale * count)]))
        if whole:
            lw.add_layer(node, "global_avg_pool", [x], out, {"act_min": act_min, "act_max": act_max}, arrays)
        else:
            lw.add_layer(node, "avg_pool", [x], out, {**attrs, "act_min": act_min, "act_max": act_max}, arrays)

    lw.produce(node, shape, index, emit, natural=(x.scale, x.zero_point))


def lower_avg_pool(lw: Lowering, node: Any) -> None:
    onnx = lw.onnx
    x, rank = lw.map_input(node, node.input[0])
    kernel = _kernel(lw, node, rank)
    strides, pads, out_h, out_w = onnx_params.window(onnx, node, x, kernel, rank)
    if any(pads) and not onnx.attr(node, "count_include_pad", 0):
        raise onnx.error(
            node,
            "padded AveragePool with count_include_pad=0 is not supported",
            hint="use padding 0 or count_include_pad=True",
        )
    shape = (out_h, out_w, x.shape[2])
    attrs = {"kernel": kernel, "stride": strides, "pads": pads}
    _produce_average(lw, node, x, attrs, shape, map_index(shape, rank), mean=False)


def lower_global_avg_pool(lw: Lowering, node: Any) -> None:
    x, rank = lw.map_input(node, node.input[0])
    shape = (1, 1, x.shape[2])
    attrs = {"kernel": list(x.shape[:2]), "stride": [1, 1], "pads": [0, 0, 0, 0]}
    _produce_average(lw, node, x, attrs, shape, map_index(shape, rank))


def lower_reduce_mean(lw: Lowering, node: Any) -> None:
    """ReduceMean over spatial axes (H and/or W, or L): a global or a full-height/width average pool."""
    onnx = lw.onnx
    x, rank = lw.map_input(node, node.input[0])
    axes = onnx.attr(node, "axes", None)
    if axes is None and onnx_params.optional_input(node, 1):
        axes = onnx.const(node.input[1])
    axes = sorted({int(a) % rank for a in (axes if axes is not None else range(rank))})
    spatial = set(range(2, rank))
    if not axes or not set(axes) <= spatial:
        raise onnx.error(
            node, f"only a mean over spatial axes (2..{rank - 1}) is supported, not over axes {axes}"
        )
    h, w, c = x.shape
    # logical axis 2 is H (rank 4) or L = W (rank 3); axis 3 is W
    over_h = rank == 4 and 2 in axes
    over_w = (3 in axes) if rank == 4 else True
    kernel = [h if over_h else 1, w if over_w else 1]
    shape = (1 if over_h else h, 1 if over_w else w, c)
    index = map_index(shape, rank)
    if not onnx.attr(node, "keepdims", 1):
        index = index.reshape([d for i, d in enumerate(index.shape) if i not in axes])
    attrs = {"kernel": kernel, "stride": [1, 1], "pads": [0, 0, 0, 0]}
    _produce_average(lw, node, x, attrs, shape, index)


# ---------------------------------------------------------------- reference


def max_pool_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    out_h, out_w, _ = graph.tensors[layer.output].shape
    padded = pad(x.astype(np.int16), layer.attrs["pads"], -1000)  # padding never wins
    cols = windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    result = cols.max(axis=(3, 4))
    return np.clip(result, layer.attrs["act_min"], layer.attrs["act_max"]).astype(np.int8)


def avg_pool_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = input_zero_point(graph, layer)
    out_h, out_w, _ = graph.tensors[layer.output].shape
    padded = pad(x, layer.attrs["pads"], zp).astype(np.int64) - zp
    acc = windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w)).sum(axis=(3, 4))
    return finish(layer, acc, graph)


def global_avg_pool_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = input_zero_point(graph, layer)
    acc = (x.astype(np.int64) - zp).sum(axis=(1, 2), keepdims=True)
    return finish(layer, acc, graph)


# ---------------------------------------------------------------- kernel steps


def maxpool_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    ints = io_ints(graph, layer)
    ints.update(window_ints(layer))
    ints["c"] = ints["in_c"]
    return single_step(MAXPOOL, graph, layer, ints, reason="max pool, 4 channels per SSUB8/SEL where C % 4 == 0")


def _avgpool_ints(graph: IntGraph, layer: Layer, window: dict[str, int]) -> dict[str, int]:
    ints = io_ints(graph, layer)
    ints.update(window)
    ints.update({"c": ints["in_c"], "mult": int(layer.arrays["multiplier"][0]), "shift": int(layer.arrays["shift"][0])})
    return ints


def avgpool_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    ints = _avgpool_ints(graph, layer, window_ints(layer))
    return single_step(AVGPOOL, graph, layer, ints, reason="average pool, padding counted as zero")


def global_avgpool_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    h, w, _ = graph.tensors[layer.inputs[0]].shape
    ints = _avgpool_ints(graph, layer, {"kh": h, "kw": w, "sh": 1, "sw": 1, "pt": 0, "pl": 0})
    return single_step(AVGPOOL, graph, layer, ints, reason="global average pool: the average pool of the whole map")


FAMILY = OpFamily(
    name="pooling",
    onnx_ops=(
        OnnxOp("MaxPool", lower_max_pool, produces=("max_pool",)),
        OnnxOp("AveragePool", lower_avg_pool, produces=("avg_pool",)),
        OnnxOp("GlobalAveragePool", lower_global_avg_pool, produces=("global_avg_pool", "avg_pool")),
        OnnxOp("ReduceMean", lower_reduce_mean, produces=("global_avg_pool", "avg_pool")),
    ),
    int_ops=(
        IntOp("max_pool", max_pool_golden, maxpool_step),
        IntOp("avg_pool", avg_pool_golden, avgpool_step),
        IntOp("global_avg_pool", global_avg_pool_golden, global_avgpool_step),
    ),
    kernels=(MAXPOOL, AVGPOOL),
    headers=("kernels/mk_pool.h",),
)
