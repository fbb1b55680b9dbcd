"""2-D convolution (group 1): ONNX Conv lowering, golden reference, the mk_conv and mk_conv1 kernels.

IR ``conv2d``: weights (Cout, KH, KW, Cin / groups) int8, bias, multiplier, shift (Cout,); attrs
kernel, stride, pads (top, left, bottom, right), act_min, act_max, groups (absent: 1; output
channel o reads the input channels of group o // (Cout / groups)). A 1-D convolution (ONNX N x C x L,
Conv1d) is the 2-D convolution of a (1, L, C) map with a (1, K) kernel. An ONNX Conv with group = input
channels is a depthwise convolution (:mod:`malak_pipe.mcu.ops.depthwise`).

Kernel choice (C in firmware/include/kernels/mk_conv.h, mk_conv1.h and mk_pw.h):

* a one-channel input with at most ``MAX_CONV1_TAPS`` taps (a first layer) runs ``mk_conv1``:
  q15 weights, the columns of one output row streamed through scratch;
* a 1x1 convolution (stride 1, no padding, one group, no fused pool) where ``pw_pays`` (enough
  pixels for its input width) runs ``mk_pw``: no im2col,
  the weights of a block of ``pw_block`` channels widened to q15 once in scratch (doubled with the
  fast requantization), pixel pairs widened, 2 channels x 2 pixels blocks of LDRD and SMLAD only;
  odd input channel counts padded to even only (not to a multiple of 4);
* any other convolution of at least 3 pixels runs ``mk_conv3px``: q15 im2col of three pixels,
  2 channels x 3 pixels SMLAD block (each weight's SXTB16 serves 3 pixels), a fused max-pool
  kept as the largest requantized value of each window;
* anything else runs ``mk_conv``: q15 im2col of two pixels, 2 channels x 2 pixels SMLAD block;
* a 2x2 stride-2 max-pool that is the only reader of the convolution is fused into either
  (with ``fuse_pool``): the kernel requantizes the largest of the four accumulators, exact
  because requantization is monotonic when the accumulator cannot overflow the left shift
  (checked per layer, else the pool stays a layer of its own);
* 4-bit weights (``weight_bits``, :mod:`malak_pipe.mcu.ops.int4`) always run ``mk_conv`` with
  ``wbits`` = 4, row pairs packed two per byte, whatever the shape (mk_pw, mk_conv1 and
  mk_conv3px read int8 weights; mk_conv1's q15 weights would take 4x the bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import (
    ACC_LIMIT,
    WINDOW_INTS,
    KernelSpec,
    RowConstants,
    Step,
    compose_clamps,
    interleave_rows,
    io_ints,
    k4_of,
    row_constants,
    single_step,
    window_ints,
)
from malak_pipe.mcu.layout import map_index
from malak_pipe.mcu.ops import depthwise, int4, onnx_params
from malak_pipe.mcu.ops.reference import check_acc, finish, input_zero_point, pad, windows
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

MAX_CONV1_TAPS = 64
MAX_CONV1_CHANNELS = 4  # grey or RGB(A) inputs: mk_conv1's columns, not an im2col of channel groups
PW_WEIGHT_SCRATCH = 16384  # bytes of q15 weights mk_pw widens at once (a block of output channels)
PW_MIN_PIXELS = 16  # below, widening every weight for so few pixels costs more than mk_conv3px's SXTB16


def pw_pays(pixels: int, k2: int) -> bool:
    """Whether mk_pw beats mk_conv3px on a 1x1 layer: its faster inner loop must pay for widening
    every weight once and, for wide inputs (small blocks of channels), every pixel once per block.
    Measured on MobileNetV2's 1x1 layers (16 and 64 pixels: k2 120 and 288 win, 240 and 432 lose)."""
    return pixels >= PW_MIN_PIXELS and k2 <= 4 * pixels + 64

_TAIL = ("in_zp", "out_zp", "act_min", "act_max", "pool", "fast", "lsh")
CONV = KernelSpec(
    "conv",
    "mk_conv",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "groups", *WINDOW_INTS, *_TAIL, "wbits"),
)
CONV3PX = KernelSpec(
    "conv3px",
    "mk_conv3px",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "groups", *WINDOW_INTS, *_TAIL),
)
PW = KernelSpec(
    "pw",
    "mk_pw",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    ("n", "in_c", "k2", "out_c", "cb", "out_zp", "act_min", "act_max", "fast"),
)
CONV1 = KernelSpec(
    "conv1",
    "mk_conv1",
    ("in", "out", "scratch"),
    (("weights", "int16_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", *WINDOW_INTS, *_TAIL),
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


@dataclass
class _ConvPlan:
    """What every convolution kernel step shares: arguments, row constants, the fused pool."""

    ints: dict
    rc: RowConstants
    pool: Layer | None
    reason: str
    output: str
    layers: list[str]
    ops: list[str]
    macs: int
    k: int
    k4: int

    def step(self, spec: KernelSpec, layer: Layer, consts: dict, scratch: int, why: str) -> Step:
        inputs, why = [layer.inputs[0]], why + self.reason
        return Step(spec, self.layers, self.ops, inputs, self.output, self.ints, consts, scratch, self.macs, why)


def _plan(graph: IntGraph, layer: Layer, options: CodegenOptions) -> _ConvPlan:
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
    ints["groups"] = layer.attrs.get("groups", 1)
    macs = layer.macs(graph) + (pool.macs(graph) if pool is not None else 0)
    ints["wbits"] = int4.weight_bits(layer)
    return _ConvPlan(ints, rc, pool, reason, output, layers, ops, macs, k, k4)


def conv_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """mk_pw, mk_conv1, mk_conv3px or mk_conv for ``layer`` (mk_conv for 4-bit weights), with the max-pool
    after it fused when it can be."""
    plan = _plan(graph, layer, options)
    four_bit = plan.ints["wbits"] == 4
    if not four_bit and plan.pool is None and _pointwise(layer, plan.ints):
        return _pw_step(graph, layer, plan.ints)
    if four_bit or _conv1(plan) or plan.ints["out_h"] * plan.ints["out_w"] < 3:
        return _im2col_step(layer, plan)
    why = f"im2col of 3 pixels (k = {plan.k}), 2 channels x 3 pixels SMLAD block (SXTB16 of weights shared)"
    why += ", the max-pool kept over requantized pixels" if plan.pool is not None else ""
    why += f", {plan.ints['groups']} groups" if plan.ints["groups"] > 1 else ""
    return plan.step(CONV3PX, layer, _pair_weights(plan), 3 * plan.k4 * 2, why)


def im2col_conv_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """The mk_conv1 / mk_conv step of ``layer`` (2-pixel im2col, channel pairs interleaved), whatever
    :func:`conv_step` picks: for callers that run mk_conv's routines themselves (a fused block
    streaming rows through it)."""
    return _im2col_step(layer, _plan(graph, layer, options))


def _conv1(plan: _ConvPlan) -> bool:
    ints = plan.ints
    few = ints["in_c"] == 1 or (ints["in_c"] <= MAX_CONV1_CHANNELS and ints["kh"] * ints["kw"] > 1)  # not a 1x1
    return ints["wbits"] == 8 and few and ints["groups"] == 1 and plan.k <= MAX_CONV1_TAPS


def _pair_weights(plan: _ConvPlan) -> dict:
    per_group = np.split(plan.rc.rows, plan.ints["groups"])  # channel pairs interleaved within each group
    return {"weights": np.concatenate([interleave_rows(rows, 2) for rows in per_group]), "chan": plan.rc.chan}


def _s4_weights(layer: Layer, plan: _ConvPlan) -> dict:
    """mk_conv's 4-bit weights: the row pairs of each group packed two per byte (int4.conv_layout)."""
    int4.check_acc16(layer, plan.rc.rows)
    return {"weights": int4.conv_layout(plan.rc.rows, plan.ints["groups"]), "chan": plan.rc.chan}


def _im2col_step(layer: Layer, plan: _ConvPlan) -> Step:
    ints, k = plan.ints, plan.k
    if _conv1(plan):
        weights = layer.arrays["weights"]
        k2 = k + (k & 1)
        q15 = np.zeros((weights.shape[0], k2), dtype=np.int16)
        q15[:, :k] = weights.reshape(weights.shape[0], k)
        pixels = 2 * 2 * (ints["out_w"] // 2) if ints["pool"] else ints["out_w"]
        what = "one input channel" if ints["in_c"] == 1 else f"{ints['in_c']} input channels"
        why = f"{what}, {k} <= {MAX_CONV1_TAPS} taps: q15 weights, output rows streamed"
        return plan.step(CONV1, layer, {"weights": q15.reshape(-1), "chan": plan.rc.chan}, pixels * k2 * 2, why)
    scratch = (4 if plan.pool is not None else 2) * plan.k4 * 2
    why = f"im2col of 2 pixels (k = {k}), 2 channels x 2 pixels SMLAD block"
    why += f", {ints['groups']} groups" if ints["groups"] > 1 else ""
    if ints["wbits"] == 4:
        why = f"{int4.unpack_cost_reason(plan.rc.rows.size)}: row pairs, two ANDs per 8 weights; {why}"
        return plan.step(CONV, layer, _s4_weights(layer, plan), scratch, why)
    return plan.step(CONV, layer, _pair_weights(plan), scratch, why)


def _pointwise(layer: Layer, ints: dict) -> bool:
    window = (ints["kh"], ints["kw"], ints["sh"], ints["sw"])
    if not pw_pays(ints["out_h"] * ints["out_w"], ints["in_c"] + ints["in_c"] % 2):
        return False
    return window == (1, 1, 1, 1) and not any(layer.attrs["pads"]) and layer.attrs.get("groups", 1) == 1


def pw_block(out_c: int, k2: int) -> int:
    """Output channels whose q15 weights mk_pw lays out at once: all that fit PW_WEIGHT_SCRATCH, else an
    even number of them."""
    fit = max(2, PW_WEIGHT_SCRATCH // (2 * k2 + 20) // 2 * 2)
    return min(out_c, fit)


def _pw_step(graph: IntGraph, layer: Layer, ints: dict) -> Step:
    weights = layer.arrays["weights"]
    k2 = ints["in_c"] + ints["in_c"] % 2
    rc = row_constants(layer, weights, k2, ints["in_zp"], ints["out_zp"])
    cb = pw_block(ints["out_c"], k2)
    ints.update({"n": ints["out_h"] * ints["out_w"], "k2": k2, "cb": cb, "fast": int(rc.fast), "lsh": rc.lsh})
    consts = {"weights": rc.rows.reshape(-1), "chan": rc.chan}
    reason = (
        f"1x1, {ints['in_c']} input channels, {ints['n']} pixels (k2 <= 4 x pixels + 64): no im2col, "
        f"q15 weights of {cb} channels widened once, 2 channels x 2 pixels LDRD/SMLAD block"
    )
    return single_step(PW, graph, layer, ints, consts=consts, scratch_bytes=pw_scratch_bytes(cb, k2), reason=reason)


def pw_block_words(cb: int, k2: int) -> int:
    """The words of one block of cb channels' q15 weights and constants (mk_pw_block_words)."""
    return cb // 2 * (k2 + 10) + cb % 2 * (k2 // 2 + 5)


def pw_scratch_bytes(cb: int, k2: int) -> int:
    """mk_pw's scratch: a block of cb channels' weights and constants, then two pixels' q15 values."""
    return pw_block_words(cb, k2) * 4 + 2 * k2 * 2


FAMILY = OpFamily(
    name="conv",
    onnx_ops=(OnnxOp("Conv", lower_conv, produces=("conv2d", "depthwise_conv2d")),),
    int_ops=(IntOp("conv2d", conv2d_golden, conv_step, conv2d_macs),),
    kernels=(CONV, CONV1, CONV3PX, PW),
    headers=("kernels/mk_conv.h", "kernels/mk_conv1.h", "kernels/mk_pw.h", "kernels/mk_conv_s4.h", "kernels/mk_s4.h"),
)
