"""4-bit weights on the MCU: how the lowering reads them, how the kernels want them packed.

A layer of the integer graph with ``attrs["weight_bits"] == 4`` (conv2d, depthwise_conv2d,
fully_connected) keeps its weights as int8 arrays with values in [-8, 7]: the golden
reference's arithmetic is the int8 one, and it checks the range. The lowering sets the
attribute when the weights' DequantizeLinear reads an ONNX INT4 initializer
(:func:`bits_attrs`). The step builders of those operators pack the weights two per byte
(``wbits`` = 4 in the kernel arguments, kernels in ``firmware/include/kernels/mk_*_s4.h``):

* conv / fully connected: padded rows in pairs (c, c + 1): byte j of each group of 4 taps
  holds tap j of row c in the low nibble and of row c + 1 in the high nibble (a last odd row
  pairs with zeros), so a pair takes k4 bytes where int8 takes 2 x k4; fully connected
  alternates the two pairs' words of a 4-row block per group (:func:`fc_layout`);
* depthwise: the (KH, KW, C) weights flattened, two per byte low nibble first
  (:func:`pack_nibbles`), or for kernels three wide in mk_dwconv3's tap order
  (``depthwise.dw3_nibbles``); the kernel unpacks them into scratch once per call.

The kernels multiply 16 x the weights (nibbles masked in place) and shift the sums back, so
the 16 x accumulator must stay in int32 (:func:`check_acc16`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.ir import Layer

BITS_ATTR = "weight_bits"
INT4_RANGE = (-8, 7)


def weight_bits(layer: Layer) -> int:
    """The layer's weight bit-width (8 unless the lowering recorded 4)."""
    return int(layer.attrs.get(BITS_ATTR, 8))


def is_int4(values: np.ndarray) -> bool:
    """Whether an ONNX initializer read by numpy_helper is an INT4 tensor (ml_dtypes int4)."""
    return values.dtype.name == "int4"


def as_int8(values: np.ndarray) -> np.ndarray:
    """INT4 initializer values as int8 (others unchanged)."""
    return values.astype(np.int8) if is_int4(values) else values


def fits(values: np.ndarray) -> bool:
    """Whether every value lies in [-8, 7]."""
    return values.size == 0 or (int(values.min()) >= INT4_RANGE[0] and int(values.max()) <= INT4_RANGE[1])


def bits_attrs(onnx: Any, node: Any, name: str, values: np.ndarray) -> dict[str, int]:
    """``{"weight_bits": 4}`` when the weights ``name`` of ``node`` are an INT4 initializer behind
    their DequantizeLinear and ``values`` (as the layer stores them) still fit 4 bits; else {}
    (a weight column read twice may sum out of range: the layer then runs as int8, exactly)."""
    from malak_pipe.mcu.ops.onnx_params import dq_const

    q, _, _, _ = dq_const(onnx, node, name)
    return {BITS_ATTR: 4} if is_int4(q) and fits(values) else {}


def check_weights(layer: Layer) -> None:
    """ArtifactError naming the layer when a 4-bit layer holds weights outside [-8, 7]."""
    if weight_bits(layer) == 4 and not fits(layer.arrays["weights"]):
        raise ArtifactError(f"layer '{layer.name}' is marked 4-bit but has weights outside [-8, 7]")


def pack_nibbles(values: np.ndarray) -> np.ndarray:
    """Integers in [-8, 7] flattened, two per byte (low nibble first), as int8 bytes."""
    flat = values.astype(np.int16).ravel()
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, dtype=np.int16)])
    nibbles = flat & 0xF
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).view(np.int8)


def pack_pairs(rows: np.ndarray) -> np.ndarray:
    """Rows (R, k4) in [-8, 7] as row pairs (ceil(R/2), k4): row 2p in the low nibbles."""
    if rows.shape[0] % 2:
        rows = np.concatenate([rows, np.zeros((1, rows.shape[1]), dtype=rows.dtype)])
    low, high = rows[0::2].astype(np.int16) & 0xF, rows[1::2].astype(np.int16) & 0xF
    return (low | (high << 4)).astype(np.uint8).view(np.int8)


def conv_layout(rows: np.ndarray, groups: int) -> np.ndarray:
    """mk_conv's 4-bit weights: the row pairs of each group, one after the other."""
    return np.concatenate([pack_pairs(part).ravel() for part in np.split(rows, groups)])


def fc_layout(rows: np.ndarray) -> np.ndarray:
    """mk_fc's 4-bit weights: per 4-row block the two pairs' words alternate, the rest plain pairs."""
    from malak_pipe.mcu.kernels import interleave_rows

    pairs = pack_pairs(rows)
    blocked = 2 * (rows.shape[0] // 4)
    return np.concatenate([interleave_rows(pairs[:blocked], 2), pairs[blocked:].ravel()]).astype(np.int8)


def check_acc16(layer: Layer, rows: np.ndarray) -> None:
    """ArtifactError when 16 x the accumulator of int8 inputs could leave int32."""
    bound = 16 * 128 * np.abs(rows.astype(np.int64)).sum(axis=1)
    if np.any(bound >= 2**31):
        raise ArtifactError(f"layer '{layer.name}': the 4-bit kernel's 16 x accumulator could overflow int32")


def unpack_cost_reason(weights: int) -> str:
    """The reason text every 4-bit step carries."""
    return f"4-bit weights packed two per byte ({(weights + 1) // 2} B for {weights}), unpacked in the kernel"


def weight_info(step: Any) -> dict[str, int | None]:
    """Bit-width and flash bytes of a step's weights (None for a step without weights)."""
    weights = step.consts.get("weights")
    if weights is None:
        return {"weight_bits": None, "weight_bytes": None}
    return {"weight_bits": int(step.ints.get("wbits", 8)), "weight_bytes": int(weights.nbytes)}


def firmware_weight_bytes(kind: str, weight_shape: tuple[int, ...], groups: int, bits: int) -> int:
    """Bytes of a layer's weights in the firmware's constants at ``bits``, from its torch shape.

    ``kind``: conv (weights Cout x Cin/groups x KH x KW, or x K for 1-D), depthwise (Cout x 1
    x KH x KW) or linear (Cout x K). The layer's step is planned as the code generator plans it
    (padded rows, q15 first-layer weights, row pairs), so this is what the flash holds.
    """
    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.mcu.ir import IntGraph, QTensor
    from malak_pipe.mcu.ops import REGISTRY
    from malak_pipe.mcu.ops.onnx_params import requant

    out_c = weight_shape[0]
    if kind == "linear":
        x, y, op = QTensor("x", (weight_shape[1],), 1.0, 0), QTensor("y", (out_c,), 1.0, 0), "fully_connected"
        weights, attrs = np.zeros(weight_shape, dtype=np.int8), {}
    else:
        kh, kw = (1, weight_shape[2]) if len(weight_shape) == 3 else weight_shape[2:]
        cin = weight_shape[1] * groups
        x, y = QTensor("x", (kh, kw, cin), 1.0, 0), QTensor("y", (1, 1, out_c), 1.0, 0)
        attrs = {"kernel": [kh, kw], "stride": [1, 1], "pads": [0, 0, 0, 0]}
        if kind == "depthwise":
            op, weights = "depthwise_conv2d", np.zeros((kh, kw, out_c), dtype=np.int8)
            attrs["depth_multiplier"] = out_c // cin
        else:
            op, weights = "conv2d", np.zeros((out_c, kh, kw, weight_shape[1]), dtype=np.int8)
            attrs.update({"groups": groups} if groups > 1 else {})
    attrs.update({"act_min": -128, "act_max": 127, **({BITS_ATTR: 4} if bits == 4 else {})})
    arrays = {"weights": weights, "bias": np.zeros(out_c, dtype=np.int32), **requant(np.full(out_c, 0.25))}
    layer = Layer("layer", op, ["x"], "y", attrs, arrays)
    step = REGISTRY.int_op(layer).build_step(IntGraph({"x": x, "y": y}, [layer], "x", "y"), layer, CodegenOptions())
    return int(step.consts["weights"].nbytes)
