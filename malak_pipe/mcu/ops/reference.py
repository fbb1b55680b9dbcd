"""Pieces the ops' golden references share: padding, window views, the int32 check, requantization.

Maps are batches (N, H, W, C). Accumulation is exact in integers (float64 matrix products are
exact here: each term is below 2**15 and sums stay far below 2**53).
"""

from __future__ import annotations

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.fixedpoint import requantize
from malak_pipe.mcu.ir import IntGraph, Layer

INT32_LIMIT = 2**31


def pad(x: np.ndarray, pads: list[int], value: int) -> np.ndarray:
    """``x`` padded by (top, left, bottom, right) with ``value``."""
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def windows(x: np.ndarray, kernel: list[int], stride: list[int], out_hw: tuple[int, int]) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) view of the windows of a padded (N, H, W, C) map."""
    kh, kw = kernel
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N, H', W', C, KH, KW
    view = view[:, :: stride[0], :: stride[1]][:, : out_hw[0], : out_hw[1]]
    return view.transpose(0, 1, 2, 4, 5, 3)


def check_acc(layer: Layer, acc: np.ndarray) -> np.ndarray:
    """``acc`` as int64; ArtifactError when a value leaves int32 (the kernels accumulate in int32)."""
    if acc.size and np.abs(acc).max() >= INT32_LIMIT:
        raise ArtifactError(f"layer '{layer.name}': an accumulator overflows int32")
    return acc.astype(np.int64)


def finish(layer: Layer, acc: np.ndarray, graph: IntGraph) -> np.ndarray:
    """Requantize accumulators with the layer's multipliers, output zero point and clamp."""
    out = graph.tensors[layer.output]
    a = layer.arrays
    return requantize(acc, a["multiplier"], a["shift"], out.zero_point, layer.attrs["act_min"], layer.attrs["act_max"])


def input_zero_point(graph: IntGraph, layer: Layer, index: int = 0) -> int:
    """The zero point of the layer's input ``index``."""
    return graph.tensors[layer.inputs[index]].zero_point
