"""The golden reference: the integer graph run in numpy, the specification the firmware matches.

Every layer accumulates exactly in integers, then requantizes with
:mod:`malak_pipe.mcu.fixedpoint`; each operator's reference lives with the operator
(:mod:`malak_pipe.mcu.ops`). Inputs are batches of int8 maps (N, H, W, C).
"""

from __future__ import annotations

import numpy as np

from malak_pipe.errors import DataError
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.ops import REGISTRY, int4


def quantize_input(graph: IntGraph, x: np.ndarray) -> np.ndarray:
    """Float N x C x H x W (or N x C x L) inputs, as the ONNX model takes them, to int8 N x H x W x C
    (N x 1 x L x C).

    Same arithmetic as ONNX Runtime's QuantizeLinear: x / scale in float32, rounded half to
    even, plus the zero point, saturated (uint8 models are shifted by -128 exactly).
    """
    tensor = graph.input_tensor
    x = np.asarray(x, dtype=np.float32)
    h, w, c = tensor.shape
    expected = tuple(graph.meta.get("onnx_input_shape_chw") or (c, h, w))
    if x.shape[1:] != expected:
        raise DataError(f"the model takes N x {' x '.join(map(str, expected))} inputs, got {x.shape}")
    x = x.reshape(len(x), c, h, w)
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
    int4.check_weights(layer)  # a 4-bit layer's weights lie in [-8, 7]
    return REGISTRY.int_op(layer).golden(graph, layer, *inputs)
