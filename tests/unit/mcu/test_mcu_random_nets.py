"""Random networks of the supported blocks through the real export, both quantization routes,
the lowering, the golden reference against ONNX Runtime and the generated C on the host.

A handful of seeds here (the full sweep is benchmarks/random_nets.py); each exercises a
different mix: depthwise and squeeze-and-excitation with SiLU/GELU/HardSwish tables, grouped
convolutions and residual adds, a 1-D network with concatenations, a flatten head with a softmax.
"""

from __future__ import annotations

import numpy as np
import pytest

from malak_pipe.models.random_net import ACTIVATIONS, BLOCKS, calibrate_net, random_net
from tests.helpers.mcu_pipeline import run_route

CASES = [(2, "ort_uint8"), (2, "qat"), (5, "ort_int8"), (5, "ptq"), (11, "ptq"), (20, "ort_int8")]


@pytest.mark.parametrize("seed,route", CASES, ids=[f"seed{s}-{r}" for s, r in CASES])
def test_random_net_lowers_agrees_with_onnxruntime_and_runs_bit_exact_on_the_host(seed, route):
    module, spec = random_net(seed)
    rng = np.random.default_rng(seed)
    calibration = rng.normal(size=(96, *spec.input_shape)).astype(np.float32)
    calibrate_net(module, calibration)
    x = rng.normal(size=(48, *spec.input_shape)).astype(np.float32)
    result = run_route(module, route, calibration, x)
    assert result.ok, f"{spec.describe()}: {result.stage}: {result.error}"
    assert result.host_bit_exact == 1.0
    assert result.layer_max_lsb <= 1.0 and result.layers_checked >= 5  # every layer on ONNX Runtime's inputs
    assert result.decisive_agreement >= 0.95 and result.agreement >= 0.9


def test_the_generator_draws_every_block_activation_and_shape_kind():
    specs = [random_net(seed)[1] for seed in range(150)]
    labels = " ".join(" ".join(spec.blocks) for spec in specs)
    kinds = {"conv": "conv", "grouped": " g2", "dwsep": "dwsep[", "residual": "res[", "concat": "cat[", "se": "se"}
    kinds.update({"pool": "max2", "pad": "pad["})
    assert set(kinds) == set(BLOCKS) and all(mark in labels for mark in kinds.values())
    assert all(act in labels for act in ACTIVATIONS if act != "none")
    assert {spec.dims for spec in specs} == {1, 2} and any(spec.softmax for spec in specs)
    heads = " ".join(spec.head for spec in specs)
    assert all(kind in heads for kind in ("adaptive", "mean", "flatten", "fc24", "fc40"))
    odd = {int(n) for spec in specs for n in spec.input_shape[1:]}
    assert {7, 9, 13} <= odd
