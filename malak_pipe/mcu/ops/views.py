"""Views (ONNX Flatten, Reshape, Squeeze, Identity, Dropout): the same int8 data under another name.

A view adds no layer: its float output carries the int8 tensor of its input. Only views that
keep the bytes in order are accepted: a flatten to (N, features) (a fully connected layer after
a flattened map gets its weight columns permuted from CHW to HWC when it is lowered) or the
removal of 1x1 spatial axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from malak_pipe.mcu.ops.registry import OnnxOp, OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering


def lower_identity(lw: Lowering, node: Any) -> None:
    """Identity, Dropout (inference): the input itself."""
    lw.carry(node.output[0], lw.value(node, node.input[0]))


def lower_flatten(lw: Lowering, node: Any) -> None:
    x = lw.value(node, node.input[0])
    if int(lw.onnx.attr(node, "axis", 1)) != 1:
        raise lw.onnx.error(node, "only Flatten(axis=1) is supported")
    lw.carry(node.output[0], x)


def lower_reshape(lw: Lowering, node: Any) -> None:
    x = lw.value(node, node.input[0])
    shape = lw.onnx.const(node.input[1])
    if shape is None or shape.size != 2 or int(shape[1]) not in (-1, x.size):
        raise lw.onnx.error(node, f"only a Reshape to (N, {x.size}) is supported, not {shape}")
    lw.carry(node.output[0], x)


def lower_squeeze(lw: Lowering, node: Any) -> None:
    x = lw.value(node, node.input[0])
    if len(x.shape) == 3 and x.shape[0] * x.shape[1] != 1:
        raise lw.onnx.error(node, f"Squeeze of a {x.shape} map is not supported")
    lw.carry(node.output[0], x)


FAMILY = OpFamily(
    name="views",
    onnx_ops=(
        OnnxOp("Flatten", lower_flatten),
        OnnxOp("Reshape", lower_reshape),
        OnnxOp("Squeeze", lower_squeeze),
        OnnxOp("Identity", lower_identity),
        OnnxOp("Dropout", lower_identity),
    ),
)
