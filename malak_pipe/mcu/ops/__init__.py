"""The MCU operators, one module per family, and the registry the drivers dispatch through.

Each module holds everything about its operators: the ONNX lowering handlers (ONNX node ->
:class:`~malak_pipe.mcu.ir.Layer`), the golden reference (numpy, the specification the
firmware matches), the kernel step builder (Layer -> :class:`~malak_pipe.mcu.kernels.Step`
with the C kernel's signature and the reason its variant was picked) and the names of its C
headers under ``firmware/include/kernels/``. To add an operator, write its module (or extend a
family), declare its :class:`~malak_pipe.mcu.ops.registry.OpFamily` and list it here.

The order of ``FAMILIES`` fixes the order of the kernels, which numbers the host harness's cases.
"""

from __future__ import annotations

from malak_pipe.mcu.ops import (
    activations,
    add,
    block,
    concat,
    conv,
    depthwise,
    fully_connected,
    lut,
    mul,
    pad,
    pooling,
    softmax,
    views,
)
from malak_pipe.mcu.ops.registry import IntOp, OnnxOp, OpFamily, OpRegistry

FAMILIES = (
    conv.FAMILY,
    depthwise.FAMILY,
    fully_connected.FAMILY,
    pooling.FAMILY,
    add.FAMILY,
    mul.FAMILY,
    lut.FAMILY,
    concat.FAMILY,
    pad.FAMILY,
    softmax.FAMILY,
    activations.FAMILY,
    views.FAMILY,
    block.FAMILY,
)
REGISTRY = OpRegistry(list(FAMILIES))

__all__ = ["FAMILIES", "REGISTRY", "IntOp", "OnnxOp", "OpFamily", "OpRegistry"]
