"""Depthwise convolution: its layer (from an ONNX Conv with group = input channels), golden, mk_dwconv.

IR ``depthwise_conv2d``: weights (KH, KW, Cout) int8 with Cout = Cin * depth_multiplier (output
channel o reads input channel o // depth_multiplier), bias, multiplier, shift (Cout,); attrs
kernel, stride, pads, act_min, act_max, depth_multiplier. The ONNX Conv handler is in
:mod:`malak_pipe.mcu.ops.conv` and hands depthwise nodes to :func:`add_depthwise_layer`.

Kernels (firmware/include/kernels/mk_dwconv.h), chosen from the shape:

* ``mk_dwconv3`` for multiplier 1 and kernels three wide (any channel count, stride, padding):
  the ring's input rows widened to q15 channel by channel, weights in words of bytes
  (w0, w2, w1, 0) so SXTB16 gives the tap pair (w0, w1) for one SMLAD, two output pixels per
  pass sharing their loads;
* ``mk_dwconv`` with multiplier 1 and a channel count divisible by 4: padded input rows in a
  ring of KH rows in scratch and four channels per SXTB16 pair;
* otherwise ``mk_dwconv``'s one channel at a time on x - zero point.

Both ring kernels fold the input zero point into the bias. 4-bit weights (``weight_bits``) are
stored two per byte and unpacked into the front of scratch once per call (mk_dwconv_s4.h,
:mod:`malak_pipe.mcu.ops.int4`), then the kernel of the int8 layer runs on them: where
mk_dwconv3 would run, ``mk_dwconv3_s4`` with the taps in its order (:func:`dw3_nibbles`);
otherwise ``mk_dwconv_s4``, the (KH, KW, C) weights flattened, then mk_dwconv.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import (
    ACC_LIMIT,
    WINDOW_INTS,
    KernelSpec,
    Step,
    channel_constants,
    io_ints,
    single_step,
    window_ints,
)
from malak_pipe.mcu.ops import int4
from malak_pipe.mcu.ops.reference import check_acc, finish, input_zero_point, pad, windows
from malak_pipe.mcu.ops.registry import IntOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

MAX_DW_KERNEL_ROWS = 16  # the ring's row pointers: const int8_t *row[16] in mk_dwconv

_TAIL = ("in_zp", "out_zp", "act_min", "act_max", "fast", "lsh")
DWCONV = KernelSpec(
    "dwconv",
    "mk_dwconv",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t"), ("bias", "int32_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", *WINDOW_INTS, "mult", *_TAIL),
)
DWCONV3 = KernelSpec(
    "dwconv3",
    "mk_dwconv3",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    ("in_h", "in_w", "in_c", "out_h", "out_w", "kh", "sh", "sw", "pt", "pl", *_TAIL),
)
DWCONV_S4 = KernelSpec("dwconv_s4", "mk_dwconv_s4", DWCONV.buffers, DWCONV.consts, DWCONV.ints)
DWCONV3_S4 = KernelSpec("dwconv3_s4", "mk_dwconv3_s4", DWCONV3.buffers, DWCONV3.consts, DWCONV3.ints)


# ---------------------------------------------------------------- lowering


def is_depthwise(group: int, in_c: int, cin_per_group: int, out_c: int) -> bool:
    """Whether an ONNX Conv with these groups and channels is a depthwise convolution."""
    return group == in_c and cin_per_group == 1 and out_c % in_c == 0


def add_depthwise_layer(
    lw: Lowering, node: Any, x: QTensor, out: QTensor, weights: np.ndarray, attrs: dict, arrays: dict
) -> None:
    """Append the depthwise layer of an ONNX Conv (weights Cout x 1 x KH x KW)."""
    arrays["weights"] = np.ascontiguousarray(weights[:, 0].transpose(1, 2, 0))
    attrs["depth_multiplier"] = out.shape[-1] // x.shape[-1]
    lw.add_layer(node, "depthwise_conv2d", [x], out, attrs, arrays)


# ---------------------------------------------------------------- reference


def depthwise_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = input_zero_point(graph, layer)
    out_h, out_w, out_c = graph.tensors[layer.output].shape
    mult = layer.attrs["depth_multiplier"]
    padded = pad(x, layer.attrs["pads"], zp).astype(np.int64) - zp
    if mult > 1:
        padded = np.repeat(padded, mult, axis=3)  # output channel o reads input channel o // mult
    cols = windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    acc = np.einsum("nhwijc,ijc->nhwc", cols, layer.arrays["weights"].astype(np.int64)) + layer.arrays["bias"]
    return finish(layer, check_acc(layer, acc), graph)


def depthwise_macs(graph: IntGraph, layer: Layer) -> int:
    kh, kw, _ = layer.arrays["weights"].shape
    return graph.tensors[layer.output].size * kh * kw


# ---------------------------------------------------------------- kernel step


def dwconv_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """mk_dwconv3 for kernels three wide with multiplier 1, else mk_dwconv (ring or one channel at a time)."""
    return _dw_step(graph, layer, three_wide=True)


def ring_dwconv_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """The mk_dwconv step of ``layer`` (int8 ring of padded rows), whatever :func:`dwconv_step` picks:
    for callers that run mk_dwconv's routines themselves (a fused block streaming rows)."""
    return _dw_step(graph, layer, three_wide=False)


def _dw_step(graph: IntGraph, layer: Layer, three_wide: bool) -> Step:
    ints = io_ints(graph, layer)
    ints.update(window_ints(layer))
    ints["mult"] = layer.attrs["depth_multiplier"]
    weights = layer.arrays["weights"].astype(np.int8)  # KH, KW, Cout
    bias = layer.arrays["bias"].astype(np.int64)
    taps = weights.astype(np.int64).sum(axis=(0, 1))
    folded = bias - ints["in_zp"] * taps  # where every tap is inside: sum of x * w plus this
    if np.any(np.abs(folded) >= ACC_LIMIT):
        raise ArtifactError(f"layer '{layer.name}': the bias with the input zero point folded in overflows int32")
    abs_w = np.abs(weights.astype(np.int64)).sum(axis=(0, 1))
    bound = np.maximum(np.abs(bias) + 255 * abs_w, np.abs(folded) + 128 * abs_w)
    chan, fast, lsh = channel_constants(
        folded, layer.arrays["multiplier"], layer.arrays["shift"], ints["out_zp"], bound
    )
    ints.update({"fast": int(fast), "lsh": lsh})
    ints["wbits"] = bits = int4.weight_bits(layer)
    if three_wide and ints["mult"] == 1 and ints["kw"] == 3 and ints["kh"] <= MAX_DW_KERNEL_ROWS:
        return _dwconv3_step(graph, layer, ints, weights, chan)
    packed = int4.pack_nibbles(weights) if bits == 4 else np.ascontiguousarray(weights)
    consts = {"weights": packed, "chan": chan, "bias": bias.astype(np.int32)}
    ring = 0
    reason = f"channel multiplier {ints['mult']}, {ints['in_c']} channels: one channel at a time"
    if ints["mult"] == 1 and ints["in_c"] % 4 == 0:
        if ints["kh"] > MAX_DW_KERNEL_ROWS:
            raise ArtifactError(f"layer '{layer.name}': depthwise kernels taller than {MAX_DW_KERNEL_ROWS} rows")
        ring = ints["kh"] * ((ints["out_w"] - 1) * ints["sw"] + ints["kw"]) * ints["in_c"]
        reason = "channel multiplier 1, channels a multiple of 4: padded-row ring, 4 channels per SXTB16 pair"
    if bits == 4:  # the unpacked weights go in front of the ring
        unpacked = (weights.size + 3) // 4 * 4
        reason = f"{int4.unpack_cost_reason(weights.size)} into scratch once per call; {reason}"
        return single_step(DWCONV_S4, graph, layer, ints, consts=consts, scratch_bytes=unpacked + ring, reason=reason)
    return single_step(DWCONV, graph, layer, ints, consts=consts, scratch_bytes=ring, reason=reason)


def dw3_ring_width(out_w: int, sw: int) -> int:
    """Columns of one q15 ring row of mk_dwconv3: what two pixels per pass read, rounded up to even."""
    pairs = (out_w + 1) // 2 * 2
    return ((pairs - 1) * sw + 4 + 1) // 2 * 2


def dw3_weights(weights: np.ndarray) -> np.ndarray:
    """(KH, 3, C) taps -> per channel and row one word of bytes (w0, w2, w1, 0) (mk_dwconv3)."""
    kh, _, c = weights.shape
    words = np.zeros((c, kh, 4), dtype=np.int8)
    taps = weights.transpose(2, 0, 1)  # C, KH, 3
    words[:, :, 0], words[:, :, 1], words[:, :, 2] = taps[:, :, 0], taps[:, :, 2], taps[:, :, 1]
    return words.reshape(-1)


def dw3_nibbles(words: np.ndarray) -> np.ndarray:
    """mk_dwconv3's weight words as mk_dwconv3_s4 stores them: the three taps of each word in a
    row of nibbles (the zero byte dropped), the words padded to an even count (mk_s4_unpack_dw3
    unpacks two words from three bytes)."""
    taps = words.reshape(-1, 4)[:, :3]
    if len(taps) % 2:
        taps = np.concatenate([taps, np.zeros((1, 3), dtype=taps.dtype)])
    return int4.pack_nibbles(taps)


def _dwconv3_step(graph: IntGraph, layer: Layer, ints: dict, weights: np.ndarray, chan: np.ndarray) -> Step:
    ring = ints["kh"] * ints["in_c"] * dw3_ring_width(ints["out_w"], ints["sw"]) * 2
    consts = {"weights": dw3_weights(weights), "chan": chan}
    reason = (
        f"channel multiplier 1, kernel {ints['kh']}x3, stride {ints['sw']}: q15 ring rows channel by channel, "
        "tap pairs per SMLAD, 2 pixels per pass"
    )
    if ints["wbits"] == 4:  # mk_dwconv3's words unpacked in front of the ring
        unpacked = (4 * ints["kh"] * ints["in_c"] + 7) // 8 * 8
        consts["weights"] = dw3_nibbles(consts["weights"])
        reason = f"{int4.unpack_cost_reason(weights.size)} into mk_dwconv3's words in scratch once per call; {reason}"
        return single_step(DWCONV3_S4, graph, layer, ints, consts=consts, scratch_bytes=unpacked + ring, reason=reason)
    return single_step(DWCONV3, graph, layer, ints, consts=consts, scratch_bytes=ring, reason=reason)


FAMILY = OpFamily(
    name="depthwise",
    int_ops=(IntOp("depthwise_conv2d", depthwise_golden, dwconv_step, depthwise_macs),),
    kernels=(DWCONV, DWCONV3, DWCONV_S4, DWCONV3_S4),
    headers=("kernels/mk_dwconv.h", "kernels/mk_dwconv_s4.h"),
)
