"""Fixed-point requantization: one rounding of the exact product, and TFLite's scheme for ADD.

A real multiplier ``m`` (input scale x weight scale / output scale) becomes a Q31
``multiplier`` and a power-of-two ``shift`` (positive: left shift) with TFLite's
``QuantizeMultiplier``. :func:`requantize` (convolutions, fully connected, pools, mul) scales an
int32 accumulator by ``multiplier * 2**(shift - 31)`` and rounds the exact product once (a tie
upward): ONNX Runtime rounds the float product ``acc * m`` once too, so the two agree wherever
float32 is exact enough to tell (TFLite's ``MultiplyByQuantizedMultiplier`` rounds twice, in
``SaturatingRoundingDoublingHighMul`` and again in ``RoundingDivideByPOT``, and its result
differs from ONNX Runtime's on about 2 outputs in 1,000 of a convolution, 6 in 100 of a global
average pool). TFLite's functions stay for the add (:mod:`malak_pipe.mcu.ops.add`): its
inputs are rescaled to 20 fractional bits first, so the double rounding never shows there.

Every function works elementwise on numpy arrays in int64 so that the golden reference and the
C kernels agree bit for bit; the C side (firmware/include/mk_requant.h) is the same arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``, multiplier in [2**30, 2**31)."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"requantization multiplier must be a finite non-negative number, got {real}")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q_fixed = _round_half_away(fraction * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` over an array: (multiplier int32, shift int32)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def _round_half_away(value: float) -> int:
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (what a C uint32 shift does)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite/gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (returned as int64)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    # C integer division truncates toward zero.
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """TFLite/gemmlowp ``RoundingDivideByPOT``: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding), broadcasting like numpy.

    ``x`` holds int32 accumulators; the left shift wraps to int32 as the C code does.
    """
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(np.asarray(x, dtype=np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_rounded_once(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``x * multiplier * 2**(shift - 31)`` rounded to the nearest integer, a tie upward (int64).

    The product of an int32 ``x`` and a Q31 multiplier is exact in int64 (below 2**62), and the
    shift ``31 - shift`` is between 1 and 62 for every multiplier :func:`quantize_multiplier` gives.
    """
    x = np.asarray(x, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    return (x * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << (total - 1))) >> total


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zero_point: int,
    act_min: int = -128,
    act_max: int = 127,
) -> np.ndarray:
    """Scale int32 accumulators to int8: multiply rounding once, add the output zero point, clamp."""
    return _to_int8(multiply_rounded_once(acc, multiplier, shift), out_zero_point, act_min, act_max)


def requantize_tflite(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zero_point: int,
    act_min: int = -128,
    act_max: int = 127,
) -> np.ndarray:
    """:func:`requantize` with TFLite's ``MultiplyByQuantizedMultiplier`` (the output stage of ADD)."""
    return _to_int8(multiply_by_quantized_multiplier(acc, multiplier, shift), out_zero_point, act_min, act_max)


def _to_int8(scaled: np.ndarray, out_zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    return np.clip(scaled + int(out_zero_point), act_min, act_max).astype(np.int8)


def quantize_value(real: float, scale: float, zero_point: int) -> int:
    """A real number in a tensor's int8 domain, rounded half away from zero and clamped (TFLite)."""
    q = _round_half_away(real / scale) + int(zero_point)
    return int(min(127, max(-128, q)))
