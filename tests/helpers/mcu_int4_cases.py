"""Random layers with 4-bit weights for the kernel cases (``<op>_s4`` in mcu_kernel_cases).

The layer is drawn as its int8 kind would be, then its weights are redrawn in [-8, 7] (a fifth
of the layers hold only the extremes -8 and 7) and marked ``weight_bits: 4``; in most layers the
requantization shift grows by 4 so the outputs spread over the int8 range as with int8 weights
(16 x smaller weights, 16 x the rescale).
"""

from __future__ import annotations

import numpy as np

from malak_pipe.mcu.ir import Layer

S4_SUFFIX = "_s4"
S4_OPS = ("conv2d_s4", "conv_pool_s4", "depthwise_conv2d_s4", "depthwise3_s4", "fully_connected_s4")


def with_4bit_weights(rng: np.random.Generator, layers: list[Layer]) -> None:
    """Every layer with weights gets random 4-bit weights and ``weight_bits: 4`` (in place)."""
    for layer in layers:
        weights = layer.arrays.get("weights")
        if weights is None:
            continue
        if rng.random() < 0.2:
            values = rng.choice(np.array([-8, 7], dtype=np.int8), size=weights.shape)
        else:
            values = rng.integers(-8, 8, size=weights.shape).astype(np.int8)
        layer.arrays["weights"] = values
        if rng.random() < 0.6:  # else the outputs sit near the zero point: both requantizations covered
            layer.arrays["shift"] = layer.arrays["shift"] + 4
        layer.attrs["weight_bits"] = 4


def one_layer_graph(op: str, bits: int, seed: int = 0):
    """A conv (3x3, 32 -> 64 on 14x14), fully connected (3136 -> 128) or depthwise (3x3, 64 on
    16x16) layer with ``bits``-bit weights: SimpleCNN's conv2 and fc1 shapes, and a MobileNet-like
    depthwise layer. The rescale follows the weights' size so outputs spread alike."""
    from malak_pipe.mcu.ir import IntGraph, QTensor
    from malak_pipe.mcu.ops.onnx_params import requant

    rng = np.random.default_rng(seed)
    window = {"kernel": [3, 3], "stride": [1, 1], "pads": [1, 1, 1, 1]}
    shapes = {
        "conv2d": ((14, 14, 32), (14, 14, 64), (64, 3, 3, 32), window),
        "fully_connected": ((3136,), (128,), (128, 3136), {}),
        "depthwise_conv2d": ((16, 16, 64), (16, 16, 64), (3, 3, 64), {**window, "depth_multiplier": 1}),
    }
    x_shape, y_shape, w_shape, attrs = shapes[op]
    low, high = (-8, 8) if bits == 4 else (-127, 128)
    weights = rng.integers(low, high, size=w_shape).astype(np.int8)
    taps = int(np.prod(w_shape[1:])) if op != "depthwise_conv2d" else 9
    real = np.full(y_shape[-1], 1.0 / (high * np.sqrt(taps) * 4))
    arrays = {"weights": weights, "bias": rng.integers(-1000, 1000, size=y_shape[-1]).astype(np.int32), **requant(real)}
    attrs = {**attrs, "act_min": -128, "act_max": 127, **({"weight_bits": 4} if bits == 4 else {})}
    tensors = {"x": QTensor("x", x_shape, 0.02, -3), "y": QTensor("y", y_shape, 0.05, 5)}
    return IntGraph(tensors, [Layer("layer", op, ["x"], "y", attrs, arrays)], "x", "y")
