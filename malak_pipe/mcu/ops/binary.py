"""What the elementwise binary operators (add, sub, mul) share: operands, broadcasting, strides.

Two int8 operands with the same layout combine element by element. Otherwise both must be
channels-last maps (or vectors, or single values) whose shapes broadcast the numpy way on
(H, W, C): a (1, 1, C) gate times an (H, W, C) map, as in squeeze-and-excitation blocks. The
layer's attrs ``a_shape``, ``b_shape`` (the operands as maps) and ``shape`` (the output map)
say how; the golden reference broadcasts with numpy and the kernels read each operand with
strides that are 0 along its broadcast axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.layout import broadcast_maps, map_index, map_shape_of, store_shape, strides_of

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering


@dataclass(frozen=True)
class Operands:
    """The two int8 operands, their map shapes, and the output's map, storage shape and logical index."""

    a: QTensor
    b: QTensor
    a_shape: tuple[int, int, int]
    b_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    storage: tuple[int, ...]
    index: np.ndarray

    def attrs(self) -> dict[str, Any]:
        return {"a_shape": list(self.a_shape), "b_shape": list(self.b_shape), "shape": list(self.shape)}


def operands(lw: Lowering, node: Any) -> Operands:
    """The operands of a binary ``node``; ArtifactError naming it when they do not broadcast."""
    a, ia = lw.operand(node, node.input[0])
    b, ib = lw.operand(node, node.input[1])
    if ia.shape == ib.shape and np.array_equal(ia, ib) and a.shape == b.shape:
        shape = store_shape(a.shape)
        return Operands(a, b, shape, shape, shape, a.shape, ia)
    if ib.size == 1 or ia.size == 1:
        big, index = (a, ia) if ib.size == 1 else (b, ib)
        shape = store_shape(big.shape)
        one = (1, 1, 1)
        return Operands(a, b, shape if big is a else one, shape if big is b else one, shape, big.shape, index)
    rank = max(ia.ndim, ib.ndim)
    sa = map_shape_of(ia.reshape((1,) * (rank - ia.ndim) + ia.shape))
    sb = map_shape_of(ib.reshape((1,) * (rank - ib.ndim) + ib.shape))
    out = broadcast_maps(sa, sb) if sa is not None and sb is not None else None
    if out is None:
        raise lw.onnx.error(
            node,
            f"cannot combine inputs of logical shapes {list(ia.shape)} and {list(ib.shape)} (stored as {a.shape} "
            f"and {b.shape})",
            hint="broadcast channels-last maps (N x C x H x W) along whole axes, e.g. an N x C x 1 x 1 gate",
        )
    storage = a.shape if out == store_shape(a.shape) else (b.shape if out == store_shape(b.shape) else out)
    index = map_index(out, rank) if rank in (3, 4) else map_index(out, 4).reshape(1, -1)
    return Operands(a, b, sa, sb, out, storage, index)


def stride_ints(layer: Layer, graph: IntGraph) -> dict[str, int]:
    """The output map and each operand's (H, W, C) strides, as the kernels take them."""
    out = tuple(layer.attrs["shape"])
    ash, asw, asc = strides_of(tuple(layer.attrs["a_shape"]), out)
    bsh, bsw, bsc = strides_of(tuple(layer.attrs["b_shape"]), out)
    return {
        "oh": out[0],
        "ow": out[1],
        "oc": out[2],
        "ash": ash,
        "asw": asw,
        "asc": asc,
        "bsh": bsh,
        "bsw": bsw,
        "bsc": bsc,
    }


STRIDE_INTS = ("oh", "ow", "oc", "ash", "asw", "asc", "bsh", "bsw", "bsc")


def broadcast_inputs(layer: Layer, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batches of both operands as int64 maps broadcast to the output map."""
    n = a.shape[0]
    a = a.astype(np.int64).reshape(n, *layer.attrs["a_shape"])
    b = b.astype(np.int64).reshape(n, *layer.attrs["b_shape"])
    shape = (n, *layer.attrs["shape"])
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)
