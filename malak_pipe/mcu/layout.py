"""ONNX tensors over channels-last int8 storage: logical index arrays.

Every int8 tensor of the integer graph is stored channels-last: a 2-D feature map (H, W, C),
a 1-D one (1, L, C), a vector (K,). The ONNX graph sees the same data in its own (logical)
shapes, batch axis included: (1, C, H, W), (1, C, L), (1, K), or whatever a Reshape, Flatten,
Squeeze, Unsqueeze, Transpose, Gather or Slice made of them. The lowering follows those view
operators exactly by applying them to an *index array*: an int array of the logical shape whose
entries are flat positions in the storage. A view operator never moves bytes; each consumer
checks that the index is a layout it can read (a convolution needs the channels-last order of
its map, a fully connected layer takes any order and permutes its weight columns instead).
"""

from __future__ import annotations

import numpy as np

INDEX_DTYPE = np.int32


def map_index(shape: tuple[int, ...], rank: int = 4) -> np.ndarray:
    """The logical index of a channels-last map: (1, C, H, W) for rank 4, (1, C, L) for rank 3 (H = 1)."""
    h, w, c = shape
    index = np.arange(h * w * c, dtype=INDEX_DTYPE).reshape(h, w, c).transpose(2, 0, 1)[None]
    if rank == 4:
        return index
    if rank == 3 and h == 1:
        return index.reshape(1, c, w)
    raise ValueError(f"no rank-{rank} logical view of a {shape} map")


def flat_index(size: int) -> np.ndarray:
    """The logical index (1, K) of a vector stored in order."""
    return np.arange(size, dtype=INDEX_DTYPE)[None]


def map_shape_of(index: np.ndarray) -> tuple[int, int, int] | None:
    """The channels-last map (H, W, C) whose logical view ``index`` is, else None.

    Rank 4 (1, C, H, W) and rank 3 (1, C, L) views of the map's own order qualify; so does a
    rank 2 (1, K) view in storage order (a (1, 1, K) map).
    """
    shape = index.shape
    if not shape or shape[0] != 1:
        return None
    if len(shape) == 4:
        candidate = (shape[2], shape[3], shape[1])
    elif len(shape) == 3:
        candidate = (1, shape[2], shape[1])
    elif len(shape) == 2:
        candidate = (1, 1, shape[1])
    else:
        return None
    expected = map_index(candidate, 4).reshape(shape)
    return candidate if np.array_equal(index, expected) else None


def is_storage_order(index: np.ndarray, size: int) -> bool:
    """Whether ``index`` lists the ``size`` stored values once each, in storage order."""
    return index.size == size and np.array_equal(index.ravel(), np.arange(size))


def store_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A storage shape as a 3-D map shape: vectors (K,) are (1, 1, K)."""
    return tuple(shape) if len(shape) == 3 else (1, 1, int(np.prod(shape)))  # type: ignore[return-value]


def broadcast_maps(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The map both broadcast to (numpy rules on H, W, C), or None when they do not."""
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)  # type: ignore[return-value]


def strides_of(shape: tuple[int, int, int], out: tuple[int, int, int]) -> tuple[int, int, int]:
    """Element strides (H, W, C) reading a channels-last ``shape`` broadcast to ``out`` (0 on a broadcast axis)."""
    h, w, c = shape
    full = (w * c, c, 1)
    return tuple(0 if n == 1 and m != 1 else s for n, m, s in zip(shape, out, full, strict=True))  # type: ignore
