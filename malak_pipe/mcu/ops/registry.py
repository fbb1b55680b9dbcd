"""The operator registry: what an operator family declares, and the lookups the drivers use.

An operator family (one module of :mod:`malak_pipe.mcu.ops`) declares an :class:`OpFamily`:

* ``onnx_ops``: the ONNX operator types it lowers, each with its handler (ONNX node ->
  :class:`~malak_pipe.mcu.ir.Layer`, through the :class:`~malak_pipe.mcu.lower.Lowering` driver)
  and the integer operators the handler may emit;
* ``clamps``: ONNX activations that fold into the clamp of the layer producing their input,
  each with a function giving its float bounds (the lowering follows a result through them);
* ``elementwise``: ONNX operators computed on functions of one int8 tensor (activations, and
  arithmetic between functions of the same tensor or with scalar constants): each maps the
  float32 values of its inputs at the 256 codes (or scalar constants) to its own, and the
  lowering turns the chain into one exact lookup table;
* ``views``: ONNX operators that only rearrange elements (Reshape, Transpose...), each mapping
  the logical index of its input (:mod:`malak_pipe.mcu.layout`) to its output's;
* ``int_ops``: the integer-graph operators it defines, each with its golden reference (numpy,
  the specification the firmware matches), its kernel step builder and its MAC count;
* ``kernels``: the C kernels its step builders call, and ``headers``: the files under
  ``firmware/include`` that define them.

The drivers (lower.py, golden.py, kernels.plan_steps, the code generator and the host harness)
only look operators up here; none of them names an operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.kernels import KernelSpec, Step

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

GoldenFn = Callable[..., np.ndarray]
"""``golden(graph, layer, *inputs)``: the layer on batches (N, ...) of its int8 inputs."""
StepBuilder = Callable[[IntGraph, Layer, CodegenOptions], "Step | list[Step]"]
MacsFn = Callable[[IntGraph, Layer], int]
LowerFn = Callable[["Lowering", Any], None]
ClampFn = Callable[["Lowering", Any], tuple[float, float]]
ElementwiseFn = Callable[["Lowering", Any, list[np.ndarray]], np.ndarray]
"""``fn(lw, node, inputs)``: float32 inputs (256 values, or scalar constants) -> the output values."""
ViewFn = Callable[["Lowering", Any, np.ndarray], np.ndarray]
"""``fn(lw, node, index)``: the logical index of the output from the input's."""


def no_macs(graph: IntGraph, layer: Layer) -> int:
    """Layers without multiply-accumulates (pooling, add, tables...)."""
    return 0


@dataclass(frozen=True)
class IntOp:
    """One operator of the integer graph: its golden reference, kernel step builder and MACs."""

    name: str
    golden: GoldenFn
    build_step: StepBuilder
    macs: MacsFn = no_macs


@dataclass(frozen=True)
class OnnxOp:
    """How one ONNX operator type lowers; ``produces``: the integer operators it may emit."""

    op_type: str
    lower: LowerFn
    produces: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpFamily:
    """Everything one operator module declares (see the module docstring)."""

    name: str
    onnx_ops: tuple[OnnxOp, ...] = ()
    clamps: Mapping[str, ClampFn] = field(default_factory=dict)
    elementwise: Mapping[str, ElementwiseFn] = field(default_factory=dict)
    views: Mapping[str, ViewFn] = field(default_factory=dict)
    int_ops: tuple[IntOp, ...] = ()
    kernels: tuple[KernelSpec, ...] = ()
    headers: tuple[str, ...] = ()


class OpRegistry:
    """The families' declarations by name; a name declared twice is a programming error."""

    def __init__(self, families: list[OpFamily]):
        self.families = tuple(families)
        self.onnx_ops = _by_name([(op.op_type, op) for f in families for op in f.onnx_ops], "ONNX operator")
        self.clamps = _by_name([(name, fn) for f in families for name, fn in f.clamps.items()], "clamp")
        self.elementwise = _by_name(
            [(name, fn) for f in families for name, fn in f.elementwise.items()], "elementwise operator"
        )
        self.views = _by_name([(name, fn) for f in families for name, fn in f.views.items()], "view")
        self.int_ops = _by_name([(op.name, op) for f in families for op in f.int_ops], "integer operator")
        self.kernels = _by_name([(spec.name, spec) for f in families for spec in f.kernels], "kernel")

    def int_op(self, layer: Layer) -> IntOp:
        """The integer operator of ``layer``; ArtifactError naming the layer when there is none."""
        op = self.int_ops.get(layer.op)
        if op is None:
            raise ArtifactError(
                f"layer '{layer.name}': '{layer.op}' is not an MCU operator (known: {', '.join(self.int_ops)})"
            )
        return op

    def kernel_id(self, step: Step) -> int:
        """The index of the step's kernel in :attr:`kernels` (the host harness's case number)."""
        return list(self.kernels).index(step.kernel)

    def onnx_types(self) -> list[str]:
        """Every ONNX operator type the lowering accepts (clamps, elementwise and views included), sorted."""
        return sorted(set(self.onnx_ops) | set(self.clamps) | set(self.elementwise) | set(self.views))


def _by_name(items: list[tuple[str, Any]], what: str) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, item in items:
        if name in table:
            raise ValueError(f"the {what} '{name}' is declared by two operator families")
        table[name] = item
    return table
