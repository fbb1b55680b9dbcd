"""Choosing the 4-bit layers: the knapsack on a hand-checked case, greedy, random, budgets, clips."""

from __future__ import annotations

import random

import pytest

from malak_pipe.compress import bit_allocation
from malak_pipe.compress.bit_allocation import Candidate, greedy, knapsack, random_choice
from malak_pipe.compress.mixed_precision import layer_rows, plan_bits, required_saving, weight_figures
from malak_pipe.compress.precision import MixedPrecisionConfig
from malak_pipe.errors import ConfigError

# saves 10, 6, 5 bytes at costs 3, 2, 2; at least 11 bytes must go:
#   {a, b} saves 16 for 5, {a, c} 15 for 5, {b, c} 11 for 4 (the optimum), {a, b, c} 21 for 7.
# Greedy by cost per byte (a 0.30, b 0.33, c 0.40) takes a then b: 5.
HAND = [Candidate("a", 10, 3.0), Candidate("b", 6, 2.0), Candidate("c", 5, 2.0)]


def test_knapsack_finds_the_hand_checked_optimum_where_greedy_does_not():
    best = knapsack(HAND, 11)
    assert best.names == ("b", "c") and best.amount == 11 and best.cost == pytest.approx(4.0) and best.exact
    assert greedy(HAND, 11).names == ("a", "b") and greedy(HAND, 11).cost == pytest.approx(5.0)
    assert knapsack(HAND, 0).names == () and knapsack(HAND, 21).names == ("a", "b", "c")
    assert knapsack([Candidate("x", 5, 0.0), Candidate("y", 5, 0.0)], 5).names in (("x",), ("y",))  # fewer layers


def test_the_dynamic_program_agrees_with_enumeration():
    rng = random.Random(1)
    for _ in range(200):
        candidates = [Candidate(str(i), rng.randint(1, 60), rng.random()) for i in range(rng.randint(1, 9))]
        need = rng.randint(1, sum(c.amount for c in candidates))
        enumerated, dynamic = knapsack(candidates, need), bit_allocation._dynamic(candidates, need)
        assert dynamic.amount >= need and dynamic.cost == pytest.approx(enumerated.cost)


def test_many_layers_use_the_dynamic_program_and_stay_feasible():
    rng = random.Random(2)
    candidates = [Candidate(f"l{i}", rng.randint(100, 200_000), rng.random()) for i in range(30)]
    need = sum(c.amount for c in candidates) // 2
    chosen = knapsack(candidates, need)
    assert chosen.amount >= need and not chosen.exact  # amounts this large are rounded into coarser units
    assert chosen.cost <= greedy(candidates, need).cost + 1e-9


def test_random_choice_is_uniform_over_feasible_sets_and_seeded():
    draws = {random_choice(HAND, 11, seed).names for seed in range(60)}
    assert draws == {("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")}
    assert random_choice(HAND, 11, 7) == random_choice(HAND, 11, 7)


def test_an_impossible_budget_names_what_it_needs():
    with pytest.raises(ConfigError, match="needs 22 saved, every layer at 4 bits saves 21"):
        knapsack(HAND, 22)


def _row(layer, clip, drop, kl, params, int8, int4):
    return {"layer": layer, "clip": clip, "val_drop_pp": drop, "kl": kl, "params": params,
            "weight_bytes_int8": int8, "weight_bytes_int4": int4, "bytes_saved": int8 - int4}


TABLE = {
    "layers": [
        _row("conv", "minmax", 0.6, 0.02, 1000, 1000, 500),
        _row("conv", "mse", 0.2, 0.01, 1000, 1000, 500),
        _row("fc1", "minmax", 0.1, 0.05, 8000, 8000, 4000),
        _row("fc1", "mse", 0.3, 0.04, 8000, 8000, 4000),
        _row("fc2", "minmax", -0.1, 0.001, 100, 120, 64),
        _row("fc2", "mse", -0.1, 0.002, 100, 120, 64),
    ]
}


def test_clips_auto_takes_the_smaller_val_drop_per_layer():
    rows = layer_rows(TABLE, "auto")
    assert {name: row["clip"] for name, row in rows.items()} == {"conv": "mse", "fc1": "minmax", "fc2": "minmax"}
    assert {name: row["clip"] for name, row in layer_rows(TABLE, "mse").items()} == dict.fromkeys(rows, "mse")


def test_budgets_set_the_saving_needed():
    rows = layer_rows(TABLE, "auto")
    flash = MixedPrecisionConfig(budget="flash_bytes", flash_bytes=10_000, flash_margin_bytes=100)
    assert required_saving(flash, rows, int8_flash_bytes=14_000) == 4_100
    target = MixedPrecisionConfig(budget="target", flash_margin_bytes=0)
    assert required_saving(target, rows, int8_flash_bytes=14_000, target_flash_bytes=9_000) == 5_000
    weights = MixedPrecisionConfig(budget="weight_bytes", weight_bytes=5_120)
    assert required_saving(weights, rows) == 9_120 - 5_120
    bits = MixedPrecisionConfig(budget="average_bits", average_bits=6.0)
    assert required_saving(bits, rows) == 4550  # half of the 9100 parameters' 4 bits
    with pytest.raises(ConfigError, match="predicts the firmware's flash"):
        required_saving(flash, rows)


def test_the_plan_puts_the_cheapest_layers_at_four_bits_with_their_clips():
    plan = plan_bits(MixedPrecisionConfig(budget="weight_bytes", weight_bytes=5_100), TABLE)
    # 4,020 B needed: fc1 + fc2 (4,056 B) cost 0.1 pp (a gain counts as 0)
    assert plan.bits.four_bit() == ("fc1", "fc2")
    assert plan.clips == {"fc1": "minmax", "fc2": "minmax"} and plan.bits.clip_of("fc1") == "minmax"
    assert plan.predicted_drop_pp == pytest.approx(0.0) and plan.unit == "bytes"
    figures = weight_figures(TABLE, plan.selection.names)
    assert figures["weight_bytes"] == 1000 + 4000 + 64 and figures["weight_bytes_int8"] == 9120
    everything = plan_bits(MixedPrecisionConfig(budget="average_bits", average_bits=4.0), TABLE)
    assert everything.bits.four_bit() == ("conv", "fc1", "fc2")
