"""Activations, and arithmetic on functions of one int8 tensor: evaluated on the 256 codes.

An int8 tensor takes 256 values, so any chain of elementwise operators reading only it (and
scalar constants) is a function of its code: Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid,
HardSwish, Tanh, Elu, Softplus, Exp, Neg, Abs, and Add, Sub, Mul, Div between functions of the
same tensor (SiLU as ONNX writes it: x * sigmoid(x); a hand-written hardswish x * relu6(x + 3) /
6). The lowering evaluates the chain in float32 as ONNX Runtime does, quantizes it where the
graph does, and the result is one exact lookup table (:mod:`malak_pipe.mcu.ops.lut`) — or
nothing, when the table is the identity or a clamp it folds into the producing layer.

Right after an operator (before its QuantizeLinear) Relu and Clip are ``clamps``: they narrow
the act_min/act_max of the layer the operator becomes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from malak_pipe.mcu.ops.registry import OpFamily

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering

F32 = np.float32


def relu_bounds(lw: Lowering, node: Any) -> tuple[float, float]:
    return 0.0, np.inf


def clip_bounds(lw: Lowering, node: Any) -> tuple[float, float]:
    """Clip's float bounds: attributes (opset < 11) or constant inputs (opset >= 11)."""
    lo = float(lw.onnx.attr(node, "min", -np.inf))
    hi = float(lw.onnx.attr(node, "max", np.inf))
    for position in (1, 2):
        name = node.input[position] if len(node.input) > position else ""
        if not name:
            continue
        value = lw.scalar(name)
        if value is None:
            raise lw.onnx.error(node, f"Clip bound '{name}' must be a scalar constant")
        lo, hi = (float(value), hi) if position == 1 else (lo, float(value))
    return lo, hi


CLAMPS = {"Relu": relu_bounds, "Clip": clip_bounds}


def _clip(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    lo, hi = clip_bounds(lw, node)
    return np.clip(x[0], F32(lo), F32(hi))


def _leaky_relu(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    alpha = F32(lw.onnx.attr(node, "alpha", 0.01))
    return np.where(x[0] >= 0, x[0], alpha * x[0])


def _sigmoid(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    return F32(1) / (F32(1) + np.exp(-x[0]))


def _hard_sigmoid(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    alpha, beta = F32(lw.onnx.attr(node, "alpha", 0.2)), F32(lw.onnx.attr(node, "beta", 0.5))
    return np.clip(alpha * x[0] + beta, F32(0), F32(1))


def _hard_swish(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    return x[0] * np.clip(x[0] * F32(1.0 / 6.0) + F32(0.5), F32(0), F32(1))


def _elu(lw: Lowering, node: Any, x: list[np.ndarray]) -> np.ndarray:
    alpha = F32(lw.onnx.attr(node, "alpha", 1.0))
    return np.where(x[0] >= 0, x[0], alpha * (np.exp(x[0]) - F32(1)))


def _unary(fn: Any) -> Any:
    return lambda lw, node, x: fn(x[0])


def _binary(fn: Any) -> Any:
    return lambda lw, node, x: fn(x[0], x[1])


ELEMENTWISE = {
    "Relu": _unary(lambda v: np.maximum(v, F32(0))),
    "Clip": _clip,
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _sigmoid,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Tanh": _unary(np.tanh),
    "Elu": _elu,
    "Softplus": _unary(lambda v: np.log1p(np.exp(v))),
    "Exp": _unary(np.exp),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(np.divide),
}

FAMILY = OpFamily(name="activations", clamps=CLAMPS, elementwise=ELEMENTWISE)
