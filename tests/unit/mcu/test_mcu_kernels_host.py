"""The C kernels (portable path of mk_arch.h, built for the host) against the golden reference.

Each random layer goes through the same step planning as the code generator (fusion, weight
layout, folded zero points, fast or exact requantization) and runs in one harness process.
"""

from __future__ import annotations

import pytest

from malak_pipe.mcu.hosttest import run_steps
from tests.helpers.mcu_kernel_cases import RANDOM_OPS, mismatches, random_kernel_cases

CASES_PER_OP = 60


@pytest.mark.parametrize("op", RANDOM_OPS)
def test_kernels_are_bit_exact_on_random_layers(host_harness, op):
    cases, expected = random_kernel_cases(op, CASES_PER_OP, seed=RANDOM_OPS.index(op))
    outputs = run_steps(host_harness, cases)
    assert not mismatches(outputs, expected, cases)


def test_random_cases_cover_both_requantization_paths_and_fusion():
    convs, _ = random_kernel_cases("conv2d", CASES_PER_OP, seed=RANDOM_OPS.index("conv2d"))
    fast = {step.ints["fast"] for step, _, _ in convs}
    assert fast == {0, 1}
    assert {step.ints["groups"] > 1 for step, _, _ in convs if step.kernel == "conv"} == {False, True}
    pooled, _ = random_kernel_cases("conv_pool", CASES_PER_OP, seed=RANDOM_OPS.index("conv_pool"))
    assert {step.ints["pool"] for step, _, _ in pooled} == {0, 1}
    assert {step.ints["groups"] > 1 for step, _, _ in pooled if step.ints["pool"]} == {False, True}
    dws, _ = random_kernel_cases("depthwise_conv2d", CASES_PER_OP, seed=RANDOM_OPS.index("depthwise_conv2d"))
    assert {step.ints["mult"] > 1 for step, _, _ in dws} == {False, True}


def test_pointwise_kernel_is_bit_exact_in_channel_blocks(host_harness):
    """mk_pw lays out the weights of a block of channels at a time (big layers): blocks of 2 and 6
    channels, with a last partial block, give the same bytes as the golden reference."""
    from dataclasses import replace

    from malak_pipe.mcu.ops.conv import pw_scratch_bytes

    cases, expected = random_kernel_cases("pointwise", 24, seed=7)
    blocked = []
    for index, (step, inputs, size) in enumerate(cases):
        cb = 2 if index % 2 else 6
        ints = {**step.ints, "cb": min(cb, step.ints["out_c"])}
        blocked.append((replace(step, ints=ints, scratch_bytes=pw_scratch_bytes(ints["cb"], ints["k2"])), inputs, size))
    assert any(step.ints["out_c"] > step.ints["cb"] for step, _, _ in blocked)
    outputs = run_steps(host_harness, blocked)
    assert not mismatches(outputs, expected, blocked)


def test_the_im2col_and_ring_steps_stay_available_and_bit_exact(host_harness):
    """im2col_conv_step and ring_dwconv_step give mk_conv / mk_dwconv steps whatever the planner
    picks (what a fused block streaming rows through those kernels needs)."""
    import numpy as np

    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.mcu.golden import run_layer
    from malak_pipe.mcu.ops.conv import im2col_conv_step
    from malak_pipe.mcu.ops.depthwise import ring_dwconv_step
    from tests.helpers.mcu_kernel_cases import random_layer_graph

    rng = np.random.default_rng(11)
    cases, expected, kernels = [], [], set()
    for kind, build in (("pointwise", im2col_conv_step), ("depthwise3", ring_dwconv_step)):
        for _ in range(12):
            graph, _ = random_layer_graph(rng, kind)
            layer = graph.layers[0]
            step = build(graph, layer, CodegenOptions(fuse_pool=False))
            x = rng.integers(-128, 128, size=(1, *graph.input_tensor.shape)).astype(np.int8)
            want = run_layer(graph, layer, x).ravel()
            cases.append((step, [x[0]], want.size))
            expected.append((want, np.ones(want.size, dtype=bool)))
            kernels.add(step.kernel)
    assert kernels == {"conv", "dwconv"}
    assert not mismatches(run_steps(host_harness, cases), expected, cases)
