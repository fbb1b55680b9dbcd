"""Fixed-point requantization: one rounding of the exact product, and TFLite's QuantizeMultiplier, SRDHM and
RoundingDivideByPOT (the add's scheme)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from malak_pipe.mcu import fixedpoint as fp


def _srdhm_ref(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return int((ab + nudge) / (1 << 31)) if abs(ab + nudge) < 2**52 else _trunc_div(ab + nudge, 1 << 31)


def _trunc_div(n: int, d: int) -> int:
    q = abs(n) // d
    return q if n >= 0 else -q


def _rdbpot_ref(x: int, e: int) -> int:
    """Round half away from zero of x / 2**e, computed with exact rationals."""
    if e == 0:
        return x
    q, r = divmod(abs(x), 1 << e)
    q += 1 if 2 * r >= (1 << e) else 0
    return q if x >= 0 else -q


@pytest.mark.parametrize("real", [1e-9, 0.0001234, 0.25, 0.5, 0.75, 0.999999999, 1.0, 3.5, 1234.5])
def test_quantize_multiplier_reconstructs(real):
    mult, shift = fp.quantize_multiplier(real)
    assert 2**30 <= mult < 2**31
    assert math.isclose(mult * 2.0 ** (shift - 31), real, rel_tol=2**-30)


def test_quantize_multiplier_zero_and_tiny():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(1e-40) == (0, 0)
    with pytest.raises(ValueError):
        fp.quantize_multiplier(-1.0)


def test_srdhm_matches_exact_integer_definition():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(-(2**31), 2**31, 4000), [-(2**31), 2**31 - 1, 0, -1, 1]])
    b = np.concatenate([rng.integers(-(2**31), 2**31, 4000), [-(2**31), 2**31 - 1, 0, 1, -1]])
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    want = [_srdhm_ref(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want


def test_rounding_divide_by_pot_is_round_half_away_from_zero():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(-(2**31), 2**31, 3000), np.arange(-40, 41)])
    for e in (0, 1, 2, 5, 13, 31):
        got = fp.rounding_divide_by_pot(x, e)
        assert got.tolist() == [_rdbpot_ref(int(v), e) for v in x], e
    assert fp.rounding_divide_by_pot(np.array([-5, -3, 3, 5]), 1).tolist() == [-3, -2, 2, 3]


def test_requantize_clamps_and_adds_zero_point():
    mult, shift = fp.quantize_multiplier(0.5)
    out = fp.requantize(np.array([-1000, -3, -1, 0, 1, 3, 1000]), mult, shift, 10, -20, 100)
    # SRDHM rounds a product tie upward (-1.5 -> -1, 1.5 -> 2), as gemmlowp/TFLite/CMSIS-NN do
    assert out.tolist() == [-20, 9, 10, 10, 11, 12, 100]


def _rounded_once_ref(x: int, mult: int, shift: int) -> int:
    """The exact rational x * mult * 2**(shift - 31), rounded to the nearest integer, a tie upward."""
    value = Fraction(x * mult, 2 ** (31 - shift))
    return math.floor(value + Fraction(1, 2))


def test_multiply_rounded_once_is_the_exact_product_rounded_once():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.integers(-(2**31), 2**31, 3000), np.arange(-40, 41), [-(2**31), 2**31 - 1]])
    for real in (1e-9, 3.1e-5, 0.0123, 0.25, 0.5, 0.7, 1.0, 3.5, 1234.5):
        mult, shift = fp.quantize_multiplier(real)
        got = fp.multiply_rounded_once(x, mult, shift)
        assert got.tolist() == [_rounded_once_ref(int(v), mult, shift) for v in x], real


def test_requantize_rounds_once_where_tflite_rounds_twice():
    """One rounding is within half a step of acc * multiplier; TFLite's double rounding is not
    (its first rounding, at 2**-r of a step, can push a value just below a half over it)."""
    mult, shift = fp.quantize_multiplier(0.0123)
    acc = np.arange(-20_000, 20_000)
    exact = acc * (mult * 2.0 ** (shift - 31))
    once = fp.multiply_rounded_once(acc, mult, shift)
    twice = fp.multiply_by_quantized_multiplier(acc, mult, shift)
    assert np.abs(once - exact).max() <= 0.5
    off = np.abs(twice - exact) > 0.5
    assert off.sum() > 0 and np.all(np.abs(twice - once)[off] == 1)
    assert fp.requantize(acc, mult, shift, 3).tolist() == np.clip(once + 3, -128, 127).tolist()
    assert fp.requantize_tflite(acc, mult, shift, 3).tolist() == np.clip(twice + 3, -128, 127).tolist()


def test_quantize_value_rounds_half_away():
    assert fp.quantize_value(0.25, 0.5, 0) == 1
    assert fp.quantize_value(-0.25, 0.5, 0) == -1
    assert fp.quantize_value(1000.0, 0.5, 0) == 127
