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
S4_OPS = ("conv2d_s4", "conv_pool_s4", "depthwise_conv2d_s4", "fully_connected_s4")


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
