"""2-D convolution (group 1): ONNX Conv lowering, golden reference, the mk_conv and mk_conv1 kernels.

IR ``conv2d``: weights (Cout, KH, KW, Cin / groups) int8, bias, multiplier, shift (Cout,); attrs
kernel, stride, pads (top, left, bottom, right), act_min, act_max, groups (absent: 1; output
channel o reads the input channels of group o // (Cout / groups)). A 1-D convolution (ONNX N x C x L,
Conv1d) is the 2-D convolution of a (1, L, C) map with a (1, K) kernel. An ONNX Conv with group = input
channels is a depthwise convolution (:mod:`malak_pipe.mcu.ops.depthwise`).

Kernel choice (C in firmware/include/kernels/mk_conv.h and mk_conv1.h):

* a one-channel input with at most ``MAX_CONV1_TAPS`` taps (a first layer) runs ``mk_conv1``:
  q15 weights, the columns of one output row streamed through scratch;
* anything else runs ``mk_conv``: q15 im2col of two pixels, 2 channels x 2 pixels SMLAD block;
* a 2x2 stride-2 max-pool that is the only reader of the convolution is fused into either
  (with ``fuse_pool``): the kernel requantizes the largest of the four accumulators, exact
  because requantization is monotonic when the accumulator cannot overflow the left shift
  (checked per layer, else the pool stays a layer of its own);
* 4-bit weights (``weight_bits``, :mod:`malak_pipe.mcu.ops.int4`) always run ``mk_conv`` with
  ``wbits`` = 4, row pairs packed two per byte (mk_conv1's q15 weights would take 4x the bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import (
    ACC_LIMIT,
    WINDOW_INTS,
    KernelSpec,
    Step,
    compose_clamps,
    interleave_rows,
    io_ints,
    k4_of,
    row_constants,
    window_ints,
)
from malak_pipe.mcu.layout import map_index
from malak_pipe.mcu.ops import depthwise, int4, onnx_params
from malak_pipe.mcu.ops.reference import check_acc, finish, input_zero_point, pad, windows
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

MAX_CONV1_TAPS = 64

_TAIL = ("in_zp", "out_zp", "act_min", "act_max", "pool", "fast", "lsh")
CONV = KernelSpec(
    "conv",
    "mk_conv",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "groups", *WINDOW_INTS, *_TAIL, "wbits"),
)
CONV1 = KernelSpec(
    "conv1",
    "mk_conv1",
    ("in", "out", "scratch"),
    (("weights", "int16_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "out_h", "out_w", "out_c", *WINDOW_INTS, *_TAIL),
)


# ---------------------------------------------------------------- lowering


def lower_conv(lw: Lowering, node: Any) -> None:
    """ONNX Conv (2-D, or 1-D as height 1) -> conv2d, or depthwise_conv2d when group = input channels."""
    onnx = lw.onnx
    x, rank = lw.map_input(node, node.input[0])
    weights, w_scale = onnx_params.weights(onnx, node, node.input[1], None)
    if weights.ndim == 3:  # Conv1d: (Cout, Cin/group, K) is a (Cout, Cin/group, 1, K) kernel
        weights = weights[:, :, None, :]
    out_c, cin_per_group, kh, kw = weights.shape
    group = int(onnx.attr(node, "group", 1))
    in_c = x.shape[-1]
    dense = in_c % group == 0 and out_c % group == 0 and cin_per_group == in_c // group
    dense = dense and not (group > 1 and depthwise.is_depthwise(group, in_c, cin_per_group, out_c))
    if not dense and not depthwise.is_depthwise(group, in_c, cin_per_group, out_c):
        raise onnx.error(
            node,
            f"grouped convolution (group={group}, {in_c} input channels, weights {list(weights.shape)}) does not "
            "match its input",
            hint="group must divide the input and output channels",
        )
    strides, pads, out_h, out_w = onnx_params.window(onnx, node, x, [kh, kw], rank)
    bias = onnx_params.bias(onnx, node, onnx_params.optional_input(node, 2), out_c, x.scale * w_scale)
    base = {"kernel": [kh, kw], "stride": strides, "pads": pads, **({"groups": group} if group > 1 else {})}

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        attrs = {**base, "act_min": act_min, "act_max": act_max, **int4.bits_attrs(onnx, node, node.input[1], weights)}
        real = x.scale * w_scale / out.scale
        arrays = {"bias": onnx_params.saturating_bias(bias, weights, real), **onnx_params.requant(real)}
        if dense:
            arrays["weights"] = np.ascontiguousarray(weights.transpose(0, 2, 3, 1))
            lw.add_layer(node, "conv2d", [x], out, attrs, arrays)
        else:
            depthwise.add_depthwise_layer(lw, node, x, out, weights, attrs, arrays)

    shape = (out_h, out_w, out_c)
    lw.produce(node, shape, map_index(shape, rank), emit)


# ---------------------------------------------------------------- reference


def conv2d_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = input_zero_point(graph, layer)
    out_h, out_w, out_c = graph.tensors[layer.output].shape
    weights = layer.arrays["weights"].astype(np.float64)  # Cout, KH, KW, Cin / groups
    groups = layer.attrs.get("groups", 1)
    padded = pad(x, layer.attrs["pads"], zp).astype(np.float64) - zp
    cols = windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    rows = x.shape[0] * out_h * out_w
    if groups == 1:
        acc = cols.reshape(rows, -1) @ weights.reshape(out_c, -1).T
    else:  # group g: input channels g * cin/groups.., output channels g * cout/groups..
        taps, cig = weights.shape[1] * weights.shape[2], weights.shape[3]
        grouped = cols.reshape(rows, taps, groups, cig)
        acc = np.einsum("mtgc,gotc->mgo", grouped, weights.reshape(groups, -1, taps, cig)).reshape(rows, out_c)
    acc = check_acc(layer, acc + layer.arrays["bias"]).reshape(x.shape[0], out_h, out_w, out_c)
    return finish(layer, acc, graph)


def conv2d_macs(graph: IntGraph, layer: Layer) -> int:
    return graph.tensors[layer.output].size * int(np.prod(layer.arrays["weights"].shape[1:]))


# ---------------------------------------------------------------- kernel step


def fusable_pool(graph: IntGraph, conv: Layer) -> Layer | None:
    """The 2x2 stride-2 unpadded max-pool that is the only reader of ``conv``'s output, if any."""
    readers = graph.consumers(conv.output)
    if len(readers) != 1 or conv.output == graph.output:
        return None
    pool = readers[0]
    if pool.op != "max_pool" or pool.attrs["kernel"] != [2, 2] or pool.attrs["stride"] != [2, 2]:
        return None
    return pool if not any(pool.attrs["pads"]) else None


def _monotonic(layer: Layer, acc_bound: np.ndarray, fast: bool) -> bool:
    """Requantization is non-decreasing in the accumulator (needed to max-pool accumulators)."""
    left = np.maximum(layer.arrays["shift"].astype(np.int64), 0)
    return fast or bool(np.all(acc_bound * (1 << left) < ACC_LIMIT))


def conv_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """mk_conv or mk_conv1 for ``layer``, with the max-pool after it fused when it can be."""
    ints = io_ints(graph, layer)
    ints.update(window_ints(layer))
    weights = layer.arrays["weights"]
    k = int(np.prod(weights.shape[1:]))
    k4 = k4_of(k)
    rc = row_constants(layer, weights, k4, ints["in_zp"], ints["out_zp"])
    pool = fusable_pool(graph, layer) if options.fuse_pool else None
    reason = ""
    if pool is not None and not _monotonic(layer, rc.bound, rc.fast):
        pool, reason = None, "; the max-pool after it is not fused: requantization is not provably monotonic"
    output, layers, ops = layer.output, [layer.name], [layer.op]
    if pool is not None:
        output, layers, ops = pool.output, [layer.name, pool.name], [layer.op, pool.op]
        clamp = compose_clamps((ints["act_min"], ints["act_max"]), (pool.attrs["act_min"], pool.attrs["act_max"]))
        ints["act_min"], ints["act_max"] = clamp
        reason = "; the 2x2/2 max-pool after it fused (its only reader, requantization monotonic)"
    ints.update({"pool": int(pool is not None), "fast": int(rc.fast), "lsh": rc.lsh})
    ints["groups"] = groups = layer.attrs.get("groups", 1)
    macs = layer.macs(graph) + (pool.macs(graph) if pool is not None else 0)
    ints["wbits"] = bits = int4.weight_bits(layer)
    if bits == 8 and ints["in_c"] == 1 and k <= MAX_CONV1_TAPS:
        k2 = k + (k & 1)
        q15 = np.zeros((weights.shape[0], k2), dtype=np.int16)
        q15[:, :k] = weights.reshape(weights.shape[0], k)
        pixels = 2 * 2 * (ints["out_w"] // 2) if ints["pool"] else ints["out_w"]
        consts = {"weights": q15.reshape(-1), "chan": rc.chan}
        why = f"one input channel, {k} <= {MAX_CONV1_TAPS} taps: q15 weights, output rows streamed"
        return Step(CONV1, layers, ops, [layer.inputs[0]], output, ints, consts, pixels * k2 * 2, macs, why + reason)
    if bits == 4:
        int4.check_acc16(layer, rc.rows)
        weights = int4.conv_layout(rc.rows, groups)
        why = f"{int4.unpack_cost_reason(rc.rows.size)}: row pairs, two ANDs per 8 weights; "
    else:  # channel pairs interleaved within each group
        weights, why = np.concatenate([interleave_rows(rows, 2) for rows in np.split(rc.rows, groups)]), ""
    consts = {"weights": weights, "chan": rc.chan}
    scratch = (4 if pool is not None else 2) * k4 * 2
    why += f"im2col of 2 pixels (k = {k}), 2 channels x 2 pixels SMLAD block"
    why += f", {groups} groups" if groups > 1 else ""
    return Step(CONV, layers, ops, [layer.inputs[0]], output, ints, consts, scratch, macs, why + reason)


FAMILY = OpFamily(
    name="conv",
    onnx_ops=(OnnxOp("Conv", lower_conv, produces=("conv2d", "depthwise_conv2d")),),
    int_ops=(IntOp("conv2d", conv2d_golden, conv_step, conv2d_macs),),
    kernels=(CONV, CONV1),
    headers=("kernels/mk_conv.h", "kernels/mk_conv1.h", "kernels/mk_conv_s4.h", "kernels/mk_s4.h"),
)
