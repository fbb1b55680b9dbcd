"""Fully connected: ONNX Gemm and MatMul lowering, golden reference, the mk_fc kernel.

IR ``fully_connected``: weights (Cout, K) int8 with K in the storage order of the input tensor
(after a flattened channels-last map, or any view, the ONNX weight columns are permuted to where
each feature is stored: :func:`storage_columns`), bias, multiplier, shift (Cout,); attrs
act_min, act_max.

Kernels (firmware/include/kernels/mk_fc.h): the input widened to q15 once, weight rows
interleaved by 4 bytes in blocks of six (``mk_fc6``, from 6 outputs: each input pair loaded once
serves six rows) or four (``mk_fc``), the input zero point folded into the bias. 4-bit weights
(``weight_bits``), whatever the shape: ``mk_fc`` with ``wbits`` = 4, row pairs packed two per
byte (mk_fc_s4.h, :mod:`malak_pipe.mcu.ops.int4`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import KernelSpec, Step, interleave_rows, io_ints, k4_of, row_constants, single_step
from malak_pipe.mcu.layout import flat_index
from malak_pipe.mcu.ops import int4, onnx_params
from malak_pipe.mcu.ops.reference import check_acc, finish, input_zero_point
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

_INTS = ("k4", "out_c", "out_zp", "act_min", "act_max", "fast", "lsh")
FC = KernelSpec(
    "fc",
    "mk_fc",
    ("in", "out", "scratch"),
    (("weights", "int8_t"), ("chan", "mk_chan_t")),
    (*_INTS, "wbits"),
)
FC6 = KernelSpec("fc6", "mk_fc6", FC.buffers, FC.consts, _INTS)  # int8 weights only: no wbits


# ---------------------------------------------------------------- lowering


def storage_columns(lw: Lowering, node: Any, weights: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Weights (Cout, K) over logical features -> (Cout, size) over the stored int8 values.

    ``index[k]`` is where logical feature k is stored (a flattened channels-last map puts CHW
    features in HWC order); a value read twice gets the sum of its columns.
    """
    out = np.zeros((weights.shape[0], size), dtype=np.int64)
    np.add.at(out.T, index, weights.T.astype(np.int64))
    if out.size and (out.min() < -128 or out.max() > 127):
        raise lw.onnx.error(node, "an input value read twice needs a weight outside int8")
    return out.astype(np.int8)


def _fully_connected(lw: Lowering, node: Any, weights: np.ndarray, w_scale: np.ndarray, bias_name: str | None):
    x, index = lw.operand(node, node.input[0])
    out_c, k = weights.shape
    if index.ndim > 2 or index.shape[-1] != k or index.size != k:
        raise lw.onnx.error(node, f"expects 1 x {k} input features, the input is {list(index.shape)}")
    stored = storage_columns(lw, node, weights, index.ravel(), x.size)
    bias = onnx_params.bias(lw.onnx, node, bias_name, out_c, x.scale * w_scale)

    def emit(out: QTensor, act_min: int, act_max: int) -> None:
        real = x.scale * w_scale / out.scale
        arrays = {"weights": stored, "bias": onnx_params.saturating_bias(bias, weights, real)}
        arrays.update(onnx_params.requant(real))
        attrs = {"act_min": act_min, "act_max": act_max, **int4.bits_attrs(lw.onnx, node, node.input[1], stored)}
        lw.add_layer(node, "fully_connected", [x], out, attrs, arrays)

    lw.produce(node, (out_c,), flat_index(out_c), emit)


def lower_gemm(lw: Lowering, node: Any) -> None:
    """ONNX Gemm (transA=0, alpha=beta=1) with constant weights -> fully_connected."""
    onnx = lw.onnx
    if onnx.attr(node, "transA", 0) or onnx.attr(node, "alpha", 1.0) != 1.0 or onnx.attr(node, "beta", 1.0) != 1.0:
        raise onnx.error(node, "only Gemm with transA=0, alpha=1, beta=1 is supported")
    q_w, _, _, _ = onnx_params.dq_const(onnx, node, node.input[1])
    trans_b = int(onnx.attr(node, "transB", 0))
    out_c = q_w.shape[0] if trans_b else q_w.shape[1]
    weights, w_scale = onnx_params.weights(onnx, node, node.input[1], out_c)
    if not trans_b:
        weights = weights.T
    _fully_connected(lw, node, weights, w_scale, onnx_params.optional_input(node, 2))


def lower_matmul(lw: Lowering, node: Any) -> None:
    """ONNX MatMul by a 2-D constant -> fully_connected (no bias)."""
    q_w, _, _, _ = onnx_params.dq_const(lw.onnx, node, node.input[1])
    if q_w.ndim != 2:
        raise lw.onnx.error(node, "MatMul needs a 2-D constant right operand")
    weights, w_scale = onnx_params.weights(lw.onnx, node, node.input[1], q_w.shape[1])
    _fully_connected(lw, node, weights.T, w_scale, None)


# ---------------------------------------------------------------- reference


def fully_connected_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = input_zero_point(graph, layer)
    flat = x.reshape(x.shape[0], -1).astype(np.float64) - zp
    acc = flat @ layer.arrays["weights"].T.astype(np.float64) + layer.arrays["bias"]
    return finish(layer, check_acc(layer, acc), graph)


def fully_connected_macs(graph: IntGraph, layer: Layer) -> int:
    return int(layer.arrays["weights"].size)


# ---------------------------------------------------------------- kernel step


FC6_MIN_MACS = 4096  # below, mk_fc's rows of four: less code where the instructions hardly count


def fc6_rows(out_c: int) -> int:
    """Rows mk_fc6 runs in blocks of six (the rest in blocks of four, then plain): mk_fc6_rows in C."""
    n6 = out_c // 6 * 6
    return n6 - 6 if out_c % 6 == 2 and n6 >= 6 else n6


def fc_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    ints = io_ints(graph, layer)
    weights = layer.arrays["weights"]
    k4 = k4_of(weights.shape[1])
    rc = row_constants(layer, weights, k4, ints["in_zp"], ints["out_zp"])
    ints.update({"k4": k4, "out_c": weights.shape[0], "fast": int(rc.fast), "lsh": rc.lsh})
    ints["wbits"] = int4.weight_bits(layer)
    if ints["wbits"] == 4:
        int4.check_acc16(layer, rc.rows)
        consts = {"weights": int4.fc_layout(rc.rows), "chan": rc.chan}
        reason = (
            f"{int4.unpack_cost_reason(rc.rows.size)}: row pairs, four ANDs per 16 weights; "
            f"input widened to q15 once ({k4} values), 4 interleaved rows per pass"
        )
        return single_step(FC, graph, layer, ints, consts=consts, scratch_bytes=2 * k4, reason=reason)
    n6 = fc6_rows(weights.shape[0]) if weights.size >= FC6_MIN_MACS else 0
    layout = [interleave_rows(rc.rows[:n6], 6), interleave_rows(rc.rows[n6:], 4)]
    consts = {"weights": np.concatenate(layout), "chan": rc.chan}
    reason = f"input widened to q15 once ({k4} values), {6 if n6 else 4} interleaved rows per pass"
    reason += "" if n6 or weights.size >= FC6_MIN_MACS else f" ({weights.size} < {FC6_MIN_MACS} MACs: the smaller code)"
    spec = FC6 if n6 else FC
    return single_step(spec, graph, layer, ints, consts=consts, scratch_bytes=2 * k4, reason=reason)


FAMILY = OpFamily(
    name="fully_connected",
    onnx_ops=(
        OnnxOp("Gemm", lower_gemm, produces=("fully_connected",)),
        OnnxOp("MatMul", lower_matmul, produces=("fully_connected",)),
    ),
    int_ops=(IntOp("fully_connected", fully_connected_golden, fc_step, fully_connected_macs),),
    kernels=(FC, FC6),
    headers=("kernels/mk_fc.h", "kernels/mk_fc_s4.h"),
)
