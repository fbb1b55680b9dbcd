"""Views: ONNX operators that only rearrange elements, applied to logical index arrays.

Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Gather and Slice (constant indices), Identity
and Dropout (inference) move no bytes: the lowering applies each to the logical index of its
input (:mod:`malak_pipe.mcu.layout`), whether the tensor is a dequantized activation, an int8
ONNX tensor or an operator's result not yet quantized. The consumers decide whether they can
read the layout that results (a transpose to channels-last and back is free; a fully connected
layer after any flatten permutes its weight columns). No layer, golden reference or kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.ops import onnx_params
from malak_pipe.mcu.ops.registry import OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering


def _const_ints(lw: Lowering, node: Any, position: int, attribute: str) -> list[int] | None:
    """Integer parameters given as constant input ``position`` (newer opsets) or attribute ``attribute``."""
    name = onnx_params.optional_input(node, position)
    if name is not None:
        value = lw.onnx.const(name)
        if value is None:
            raise lw.onnx.error(node, f"input '{name}' must be a constant")
        return [int(v) for v in np.asarray(value).ravel()]
    value = lw.onnx.attr(node, attribute, None)
    return None if value is None else [int(v) for v in value]


def _axes(axes: list[int], rank: int) -> list[int]:
    return sorted(a % rank for a in axes)


def identity(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    """Identity, Dropout (inference)."""
    return index


def reshape(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    shape = _const_ints(lw, node, 1, "shape")
    if shape is None:
        raise lw.onnx.error(node, "Reshape needs a constant shape")
    if not lw.onnx.attr(node, "allowzero", 0):
        shape = [index.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    try:
        return index.reshape(shape)
    except ValueError:
        raise lw.onnx.error(node, f"cannot reshape {list(index.shape)} to {shape}") from None


def flatten(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    axis = int(lw.onnx.attr(node, "axis", 1)) % max(index.ndim, 1)
    return index.reshape(int(np.prod(index.shape[:axis])), -1)


def squeeze(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    axes = _const_ints(lw, node, 1, "axes")
    if axes is None:
        return index.reshape([d for d in index.shape if d != 1])
    axes = _axes(axes, index.ndim)
    if any(index.shape[a] != 1 for a in axes):
        raise lw.onnx.error(node, f"cannot squeeze axes {axes} of shape {list(index.shape)}")
    return index.reshape([d for i, d in enumerate(index.shape) if i not in axes])


def unsqueeze(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    axes = _const_ints(lw, node, 1, "axes") or []
    return np.expand_dims(index, tuple(_axes(axes, index.ndim + len(axes))))


def transpose(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    perm = lw.onnx.attr(node, "perm", None)
    return index.transpose(None if perm is None else [int(p) for p in perm])


def gather(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    """Gather with constant indices: the elements it picks, in its order."""
    indices = lw.onnx.const(node.input[1])
    if indices is None:
        raise lw.onnx.error(node, "Gather needs constant indices")
    axis = int(lw.onnx.attr(node, "axis", 0)) % index.ndim
    return np.take(index, np.asarray(indices, dtype=np.int64) % index.shape[axis], axis=axis)


def slice_view(lw: Lowering, node: Any, index: np.ndarray) -> np.ndarray:
    """Slice with constant starts, ends, axes and steps."""
    starts, ends = _const_ints(lw, node, 1, "starts"), _const_ints(lw, node, 2, "ends")
    if starts is None or ends is None:
        raise lw.onnx.error(node, "Slice needs constant starts and ends")
    axes = _const_ints(lw, node, 3, "axes") or list(range(len(starts)))
    steps = _const_ints(lw, node, 4, "steps") or [1] * len(starts)
    selection = [slice(None)] * index.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        selection[axis % index.ndim] = slice(start, end, step)
    return index[tuple(selection)]


VIEWS = {
    "Reshape": reshape,
    "Flatten": flatten,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Transpose": transpose,
    "Gather": gather,
    "Slice": slice_view,
    "Identity": identity,
    "Dropout": identity,
}

FAMILY = OpFamily(name="views", views=VIEWS)
