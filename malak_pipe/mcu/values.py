"""What the lowering knows about each ONNX tensor: the states of :class:`~malak_pipe.mcu.lower.Lowering`.

* :class:`Value`: a float tensor that is a function of one int8 tensor of the integer graph,
  element by element: ``fn[q + 128]`` is its value where the int8 tensor holds ``q`` (``fn``
  None: the dequantized code itself, ``(q - zero_point) * scale``). Every DequantizeLinear
  output is one; an activation, or arithmetic between functions of the same tensor (x *
  sigmoid(x)), gives another. A function becomes an int8 tensor again through an exact 256-entry
  lookup table when a consumer needs one.
* :class:`Coded`: an int8 ONNX tensor (a QuantizeLinear output): ``codes[q + 128]`` of an int8
  tensor of the graph; the identity table is the tensor itself.
* :class:`Pending`: the float result of an operator (a convolution, a pool...) not yet
  quantized: its QuantizeLinear (after clamps and views) decides the output scale and zero point
  of the layer it becomes.

Each carries the logical index (:mod:`malak_pipe.mcu.layout`) of the ONNX tensor over the
storage of its int8 tensor. The float arithmetic mirrors ONNX Runtime's (float32, QuantizeLinear
rounding half to even and saturating), so a table reproduces the QDQ graph's float chain exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from malak_pipe.mcu.ir import QTensor

CODES = np.arange(-128, 128, dtype=np.int64)


def dequantize(codes: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """DequantizeLinear in float32: (q - zero_point) * scale."""
    return (np.asarray(codes, dtype=np.int64) - zero_point).astype(np.float32) * np.float32(scale)


def quantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """QuantizeLinear to int8 in float32: x / scale rounded half to even, plus the zero point, saturated."""
    q = np.rint(np.asarray(values, dtype=np.float32) / np.float32(scale))
    q = np.clip(np.nan_to_num(q, nan=0.0, posinf=1e9, neginf=-1e9), -1e9, 1e9).astype(np.int64) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


@dataclass(frozen=True)
class Value:
    """A float tensor: ``fn`` of the int8 ``tensor`` seen through the logical ``index``."""

    tensor: QTensor
    index: np.ndarray
    fn: np.ndarray | None = None
    coded: Coded | None = None  # the int8 tensor this is the DequantizeLinear of, when fn is not None
    ops: tuple[str, ...] = ()  # the ONNX operators applied since the int8 tensor (names the table)

    def values(self) -> np.ndarray:
        """The float32 value of every int8 code (256 entries)."""
        return dequantize(CODES, self.tensor.scale, self.tensor.zero_point) if self.fn is None else self.fn

    def with_fn(self, fn: np.ndarray, op: str) -> Value:
        """The function ``fn`` of the same int8 tensor, computed by ONNX operator ``op``."""
        return Value(self.tensor, self.index, np.asarray(fn, dtype=np.float32), None, (*self.ops, op))

    def with_index(self, index: np.ndarray) -> Value:
        return replace(self, index=index)


@dataclass(frozen=True)
class Coded:
    """An int8 ONNX tensor: ``codes[q + 128]`` of the int8 ``tensor``, quantized with ``scale``, ``zero_point``."""

    tensor: QTensor
    index: np.ndarray
    codes: np.ndarray
    scale: float
    zero_point: int
    name: str = ""  # the QuantizeLinear output (names a table layer)
    ops: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[float, int]:
        return self.scale, self.zero_point

    @property
    def identity(self) -> bool:
        return self.tensor.same_params(self.scale, self.zero_point) and np.array_equal(self.codes, CODES)

    def dequantized(self) -> Value:
        if self.identity:
            return Value(self.tensor, self.index)
        return Value(self.tensor, self.index, dequantize(self.codes, self.scale, self.zero_point), self, self.ops)

    def with_index(self, index: np.ndarray) -> Coded:
        return replace(self, index=index)


EmitFn = Callable[[QTensor, int, int], None]
"""``emit(output, act_min, act_max)``: append the layer(s) computing ``output`` with that clamp."""


@dataclass(frozen=True)
class Pending:
    """The float result of ``node``: storage ``shape``, logical ``index``, clamped to [lo, hi] so far.

    ``emit`` appends the layer for a given output tensor. ``natural`` is the (scale, zero point)
    the result keeps without a QuantizeLinear (max pool, mean, views of the integer domain), None
    when a QuantizeLinear must follow; ``rescales``: whether ``emit`` takes any output parameters
    (else the layer writes the natural ones and a lookup table requantizes). ``made`` is shared
    by the views of one result: the int8 tensors already emitted, by (scale, zero point, clamp).
    """

    node: object
    shape: tuple[int, ...]
    index: np.ndarray
    emit: EmitFn
    natural: tuple[float, int] | None = None
    rescales: bool = True
    lo: float = -np.inf
    hi: float = np.inf
    made: dict = field(default_factory=dict)

    def with_index(self, index: np.ndarray) -> Pending:
        return replace(self, index=index)

    def clamped(self, lo: float, hi: float) -> Pending:
        return replace(self, lo=max(self.lo, lo), hi=min(self.hi, hi))


State = Value | Coded | Pending
