"""The arena planner: live buffers never overlap, and the plan is close to the lower bound."""

from __future__ import annotations

import numpy as np
import pytest

from malak_pipe.mcu.arena import Buffer, check_plan, live_lower_bound, plan_arena


def _random_graph_buffers(rng: np.random.Generator) -> list[Buffer]:
    """Buffers of a random DAG: each step reads 1-3 earlier tensors and may have scratch."""
    steps = int(rng.integers(1, 30))
    produced = [0]  # the input, written at step 0
    sizes = {0: int(rng.integers(1, 5000))}
    last = {0: 0}
    scratch = []
    for step in range(steps):
        for src in rng.choice(produced, size=min(len(produced), int(rng.integers(1, 4))), replace=False):
            last[int(src)] = step
        tid = step + 1
        produced.append(tid)
        sizes[tid] = int(rng.integers(1, 5000))
        last[tid] = step
        if rng.random() < 0.4:
            scratch.append(Buffer(f"s{step}", int(rng.integers(1, 3000)), step, step))
    last[produced[-1]] = steps - 1
    tensors = [Buffer(f"t{t}", sizes[t], max(0, t - 1), max(last[t], max(0, t - 1))) for t in produced]
    return tensors + scratch


@pytest.mark.parametrize("seed", range(200))
def test_random_graphs_never_overlap_live_buffers(seed):
    rng = np.random.default_rng(seed)
    buffers = _random_graph_buffers(rng)
    alignment = int(rng.choice([1, 4, 8, 16]))
    plan = plan_arena(buffers, alignment=alignment)
    check_plan(plan)  # raises on any overlap of buffers live at the same step
    for a in buffers:
        assert plan.offsets[a.name] % alignment == 0
        for b in buffers:
            if a.name < b.name and a.overlaps_in_time(b):
                a0, b0 = plan.offsets[a.name], plan.offsets[b.name]
                assert a0 + a.size <= b0 or b0 + b.size <= a0
    assert plan.size >= plan.lower_bound == live_lower_bound(buffers, alignment)


def test_chain_needs_exactly_the_largest_pair():
    sizes = [784, 6272, 3136, 3136, 128, 10]
    buffers = [Buffer(f"t{i}", s, max(0, i - 1), i) for i, s in enumerate(sizes)]
    plan = plan_arena(buffers)
    assert plan.size == max(sizes[i] + sizes[i + 1] for i in range(len(sizes) - 1))
    assert plan.size == plan.lower_bound


def test_check_plan_detects_overlap():
    from malak_pipe.mcu.arena import ArenaPlan

    a, b = Buffer("a", 16, 0, 1), Buffer("b", 16, 1, 2)
    with pytest.raises(ValueError, match="overlap"):
        check_plan(ArenaPlan((a, b), {"a": 0, "b": 8}, 24, 32, 8))


def test_invalid_buffers_are_rejected():
    with pytest.raises(ValueError):
        plan_arena([Buffer("a", 4, 3, 1)])
    with pytest.raises(ValueError):
        plan_arena([Buffer("a", 4, 0, 1), Buffer("a", 4, 0, 1)])
