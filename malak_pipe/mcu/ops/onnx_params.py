"""What the op lowerings read from an ONNX node: quantized constants, window attributes, multipliers.

Weights are int8 symmetric (zero point 0), per tensor or per output channel; biases int32 (or a
float bias left unquantized, rounded with the bias scale); constants sit behind a
DequantizeLinear of an initializer, as onnxruntime's QDQ format writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from malak_pipe.mcu.fixedpoint import quantize_multipliers
from malak_pipe.mcu.ir import QTensor
from malak_pipe.mcu.onnx_graph import OnnxIndex
from malak_pipe.mcu.ops import int4


def dq_const(onnx: OnnxIndex, node: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A constant behind a DequantizeLinear: (integers, scale, zero point, axis)."""
    producer = onnx.producer.get(name)
    if producer is None or producer.op_type != "DequantizeLinear":
        raise onnx.error(node, f"input '{name}' is not a quantized constant (DequantizeLinear of an initializer)")
    q = onnx.const(producer.input[0])
    scale = onnx.const(producer.input[1])
    if q is None or scale is None:
        raise onnx.error(node, f"input '{name}' is not a quantized constant")
    zero_point = onnx.const(producer.input[2]) if len(producer.input) > 2 and producer.input[2] else None
    zero_point = np.zeros_like(scale, dtype=np.int64) if zero_point is None else zero_point.astype(np.int64)
    return q, scale.astype(np.float64), zero_point, int(onnx.attr(producer, "axis", 1))


def float_const(onnx: OnnxIndex, node: Any, name: str) -> np.ndarray:
    """A float constant: an initializer, a Constant, or the dequantized value of a quantized one."""
    value = onnx.const(name)
    if value is not None:
        return value.astype(np.float64)
    producer = onnx.producer.get(name)
    if producer is not None and producer.op_type == "DequantizeLinear":
        q, scale, zero_point, _ = dq_const(onnx, node, name)
        return (q.astype(np.float64) - zero_point) * scale
    raise onnx.error(node, f"input '{name}' must be a constant")


def weights(onnx: OnnxIndex, node: Any, name: str, out_channels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and per-output-channel float scales (zero points must be 0); ``out_channels``
    None: the first axis of the weights."""
    q, scale, zero_point, _ = dq_const(onnx, node, name)
    q = int4.as_int8(q)  # 4-bit weights (ONNX INT4) hold int8 values in [-8, 7]
    out_channels = q.shape[0] if out_channels is None else out_channels
    if q.dtype != np.int8:
        raise onnx.error(node, f"weights '{name}' are {q.dtype}, the MCU kernels need int8")
    if np.any(zero_point != 0):
        raise onnx.error(
            node,
            f"weights '{name}' are not symmetric (non-zero zero point)",
            hint="quantize with WeightSymmetric=True",
        )
    scale = np.broadcast_to(scale.ravel(), (out_channels,)) if scale.size in (1, out_channels) else None
    if scale is None:
        raise onnx.error(node, f"weights '{name}' have a scale that is neither per-tensor nor per-output-channel")
    return q, np.array(scale, dtype=np.float64)


def bias(onnx: OnnxIndex, node: Any, name: str | None, out_channels: int, bias_scale: np.ndarray) -> np.ndarray:
    """The int32 bias (zeros without one)."""
    if not name:
        return np.zeros(out_channels, dtype=np.int32)
    value = onnx.const(name)
    if value is not None:  # a float bias left unquantized
        q = np.round(value.astype(np.float64) / bias_scale)
    else:
        q, _, zero_point, _ = dq_const(onnx, node, name)
        if np.any(zero_point != 0):
            raise onnx.error(node, f"bias '{name}' has a non-zero zero point")
    q = np.asarray(q, dtype=np.int64).ravel()
    if q.size != out_channels or q.min(initial=0) < -(2**31) or q.max(initial=0) >= 2**31:
        raise onnx.error(node, f"bias '{name}' must be {out_channels} int32 values")
    return q.astype(np.int32)


def saturating_bias(bias: np.ndarray, weights: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The bias, clamped where it alone drives the output to saturation for every input.

    With |sum (x - zp) w| <= 255 * sum |w| per channel, a bias past that plus 256 / (the channel's
    rescale) saturates the int8 output whatever the input: clamping it there gives the same
    outputs. A degenerate calibration (an activation that is always zero: a tiny scale) can also
    give near-int32 biases whose accumulators would overflow; those are clamped to where every
    accumulator fits int32 (the output moves by at most the inputs' own contribution).
    """
    abs_w = np.abs(weights.reshape(len(bias), -1).astype(np.int64)).sum(axis=1)
    limit = 255 * abs_w + np.ceil(256.0 / np.maximum(np.asarray(real, dtype=np.float64), 1e-30)) + 1
    limit = np.minimum(limit, 2**31 - 1 - 256 * abs_w)
    return np.clip(bias.astype(np.float64), -limit, limit).astype(np.int32)


def optional_input(node: Any, index: int) -> str | None:
    """The name of input ``index`` of ``node``, or None when it is absent."""
    return node.input[index] if len(node.input) > index and node.input[index] else None


def requant(real: np.ndarray) -> dict[str, np.ndarray]:
    """The ``multiplier`` and ``shift`` arrays of real rescale factors."""
    mult, shift = quantize_multipliers(real)
    return {"multiplier": mult, "shift": shift}


def window_attrs(onnx: OnnxIndex, node: Any, rank: int) -> tuple[list[int] | None, list[int], list[int]]:
    """kernel_shape, strides and pads (top, left, bottom, right) of a window op, a 1-D one (rank 3:
    N x C x L) as a 2-D window of height 1. Dilations must be 1; ceil_mode is the caller's."""
    if onnx.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise onnx.error(node, "auto_pad is not supported", hint="export with explicit pads")
    spatial = rank - 2
    if any(d != 1 for d in onnx.attr(node, "dilations", [1] * spatial)):
        raise onnx.error(node, "dilated windows are not supported")
    kernel = onnx.attr(node, "kernel_shape", None)
    strides = list(onnx.attr(node, "strides", [1] * spatial))
    pads = list(onnx.attr(node, "pads", [0] * 2 * spatial))
    if spatial == 1:
        return (None if kernel is None else [1, int(kernel[0])]), [1, strides[0]], [0, pads[0], 0, pads[1]]
    return (None if kernel is None else [int(k) for k in kernel]), strides, [pads[0], pads[1], pads[2], pads[3]]


def window(
    onnx: OnnxIndex, node: Any, tensor: QTensor, kernel: list[int], rank: int = 4, *, ceil_ok: bool = False
) -> tuple[list[int], list[int], int, int]:
    """Strides, pads (top, left, bottom, right) and output H, W of a window op on a (H, W, C) map.

    With ``ceil_ok`` (a max pool, where padding never wins) ceil_mode=1 is the same window
    with the bottom/right padding grown to reach the extra output row/column.
    """
    ceil = bool(onnx.attr(node, "ceil_mode", 0))
    if ceil and not ceil_ok:
        raise onnx.error(node, "ceil_mode=1 is not supported", hint="use ceil_mode=False or padding")
    _, strides, pads = window_attrs(onnx, node, rank)
    sizes = []
    for axis in (0, 1):
        size, k, s, before = tensor.shape[axis], kernel[axis], strides[axis], pads[axis]
        span = size + before + pads[axis + 2] - k
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= size + before:  # the last window must start inside (PyTorch's rule)
            out -= 1
        pads[axis + 2] = max(pads[axis + 2], (out - 1) * s + k - size - before)
        sizes.append(out)
    if min(sizes) <= 0:
        raise onnx.error(node, f"the window {kernel} does not fit the {tensor.shape[0]}x{tensor.shape[1]} input")
    return strides, pads, sizes[0], sizes[1]
