"""The golden reference: the integer graph run in numpy, the specification the firmware matches.

Every layer accumulates exactly in integers (float64 matrix products are exact here: each
term is below 2**15 and sums stay far below 2**53), then requantizes with
:mod:`malak_pipe.mcu.fixedpoint`. Inputs are batches of int8 maps (N, H, W, C).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from malak_pipe.errors import ArtifactError, DataError
from malak_pipe.mcu.fixedpoint import multiply_by_quantized_multiplier, requantize
from malak_pipe.mcu.ir import IntGraph, Layer

_INT32_LIMIT = 2**31


def quantize_input(graph: IntGraph, x: np.ndarray) -> np.ndarray:
    """Float N x C x H x W inputs (as the ONNX model takes them) to int8 N x H x W x C.

    Same arithmetic as ONNX Runtime's QuantizeLinear: x / scale in float32, rounded half to
    even, plus the zero point, saturated (uint8 models are shifted by -128 exactly).
    """
    tensor = graph.input_tensor
    x = np.asarray(x, dtype=np.float32)
    h, w, c = tensor.shape
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise DataError(f"the model takes N x {c} x {h} x {w} inputs, got {x.shape}")
    q = np.rint(x / np.float32(tensor.scale)).astype(np.int64) + tensor.zero_point
    return np.clip(q, -128, 127).astype(np.int8).transpose(0, 2, 3, 1).copy()


def run_golden(graph: IntGraph, x: np.ndarray, *, batch: int = 64) -> np.ndarray:
    """Run the graph on int8 inputs (N, H, W, C) in chunks of ``batch``; the int8 output (N, ...)."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.shape[1:] != graph.input_tensor.shape:
        raise DataError(f"golden input must be int8 N x {graph.input_tensor.shape}, got {x.dtype} {x.shape}")
    outputs = [run_golden_tensors(graph, x[i : i + batch])[graph.output] for i in range(0, len(x), batch)]
    if not outputs:
        return np.zeros((0, *graph.output_tensor.shape), dtype=np.int8)
    return np.concatenate(outputs)


def run_golden_tensors(graph: IntGraph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the graph for int8 inputs (N, H, W, C), by name."""
    values: dict[str, np.ndarray] = {graph.input: x}
    for layer in graph.layers:
        values[layer.output] = run_layer(graph, layer, *[values[name] for name in layer.inputs])
    return values


def run_layer(graph: IntGraph, layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    """One layer on batches of its int8 inputs."""
    run = _KERNELS.get(layer.op)
    if run is None:
        raise ArtifactError(f"layer '{layer.name}': the golden reference has no operator '{layer.op}'")
    return run(graph, layer, *inputs)


def _pad(x: np.ndarray, pads: list[int], value: int) -> np.ndarray:
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel: list[int], stride: list[int], out_hw: tuple[int, int]) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) view of the windows of a padded (N, H, W, C) map."""
    kh, kw = kernel
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N, H', W', C, KH, KW
    view = view[:, :: stride[0], :: stride[1]][:, : out_hw[0], : out_hw[1]]
    return view.transpose(0, 1, 2, 4, 5, 3)


def _check_acc(layer: Layer, acc: np.ndarray) -> np.ndarray:
    if acc.size and np.abs(acc).max() >= _INT32_LIMIT:
        raise ArtifactError(f"layer '{layer.name}': an accumulator overflows int32")
    return acc.astype(np.int64)


def _finish(layer: Layer, acc: np.ndarray, graph: IntGraph) -> np.ndarray:
    out = graph.tensors[layer.output]
    a = layer.arrays
    return requantize(acc, a["multiplier"], a["shift"], out.zero_point, layer.attrs["act_min"], layer.attrs["act_max"])


def _conv2d(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = graph.tensors[layer.inputs[0]].zero_point
    out_h, out_w, out_c = graph.tensors[layer.output].shape
    weights = layer.arrays["weights"]  # Cout, KH, KW, Cin
    padded = _pad(x, layer.attrs["pads"], zp).astype(np.float64) - zp
    cols = _windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    cols = cols.reshape(x.shape[0] * out_h * out_w, -1)
    acc = cols @ weights.reshape(out_c, -1).T.astype(np.float64) + layer.arrays["bias"]
    acc = _check_acc(layer, acc).reshape(x.shape[0], out_h, out_w, out_c)
    return _finish(layer, acc, graph)


def _depthwise(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = graph.tensors[layer.inputs[0]].zero_point
    out_h, out_w, out_c = graph.tensors[layer.output].shape
    mult = layer.attrs["depth_multiplier"]
    padded = _pad(x, layer.attrs["pads"], zp).astype(np.int64) - zp
    if mult > 1:
        padded = np.repeat(padded, mult, axis=3)  # output channel o reads input channel o // mult
    cols = _windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    acc = np.einsum("nhwijc,ijc->nhwc", cols, layer.arrays["weights"].astype(np.int64)) + layer.arrays["bias"]
    return _finish(layer, _check_acc(layer, acc), graph)


def _fully_connected(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = graph.tensors[layer.inputs[0]].zero_point
    flat = x.reshape(x.shape[0], -1).astype(np.float64) - zp
    acc = flat @ layer.arrays["weights"].T.astype(np.float64) + layer.arrays["bias"]
    return _finish(layer, _check_acc(layer, acc), graph)


def _max_pool(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    out_h, out_w, _ = graph.tensors[layer.output].shape
    padded = _pad(x.astype(np.int16), layer.attrs["pads"], -1000)  # padding never wins
    cols = _windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w))
    result = cols.max(axis=(3, 4))
    return np.clip(result, layer.attrs["act_min"], layer.attrs["act_max"]).astype(np.int8)


def _avg_pool(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = graph.tensors[layer.inputs[0]].zero_point
    out_h, out_w, _ = graph.tensors[layer.output].shape
    padded = _pad(x, layer.attrs["pads"], zp).astype(np.int64) - zp
    acc = _windows(padded, layer.attrs["kernel"], layer.attrs["stride"], (out_h, out_w)).sum(axis=(3, 4))
    return _finish(layer, acc, graph)


def _global_avg_pool(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    zp = graph.tensors[layer.inputs[0]].zero_point
    acc = (x.astype(np.int64) - zp).sum(axis=(1, 2), keepdims=True)
    return _finish(layer, acc, graph)


def _add(graph: IntGraph, layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    za = graph.tensors[layer.inputs[0]].zero_point
    zb = graph.tensors[layer.inputs[1]].zero_point
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    left = 1 << layer.attrs["left_shift"]
    sa = multiply_by_quantized_multiplier((a.astype(np.int64) - za) * left, mult[0], shift[0])
    sb = multiply_by_quantized_multiplier((b.astype(np.int64) - zb) * left, mult[1], shift[1])
    return requantize(sa + sb, mult[2], shift[2], out.zero_point, layer.attrs["act_min"], layer.attrs["act_max"])


_KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": _fully_connected,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "global_avg_pool": _global_avg_pool,
    "add": _add,
}
