"""Whole generated models built for the host with the firmware's runner: bit-exact vs golden."""

from __future__ import annotations

import json

import numpy as np
import pytest

from malak_pipe.mcu import hosttest
from malak_pipe.mcu.codegen import generate
from malak_pipe.mcu.golden import quantize_input, run_golden
from malak_pipe.mcu.lower import lower_onnx


@pytest.mark.parametrize("name", ["cnn_int8", "mixed_uint8"])
def test_generated_model_is_bit_exact_on_the_digits_test_set(host_harness, digits_models, digits_split, tmp_path, name):
    _, _, x_test, _ = digits_split
    graph = lower_onnx(digits_models[name])
    generated = generate(graph, tmp_path / "src")
    exe = hosttest.build_host_model(tmp_path / "src", tmp_path / "bin")
    images = quantize_input(graph, x_test)
    out = hosttest.run_host_model(exe, images, graph.output_tensor.size, len(generated.steps))
    np.testing.assert_array_equal(out.logits, run_golden(graph, images).reshape(len(images), -1))


def test_plan_json_and_fusion(digits_models, tmp_path):
    graph = lower_onnx(digits_models["cnn_int8"])
    generated = generate(graph, tmp_path)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [layer["kernel"] for layer in plan["layers"]] == ["conv1", "conv3px", "conv3px", "fc6", "fc6"]
    assert plan["layers"][0]["ops"] == ["conv2d", "max_pool"]
    assert "one input channel" in plan["layers"][0]["reason"] and "max-pool" in plan["layers"][0]["reason"]
    assert all(layer["reason"] for layer in plan["layers"])
    assert plan["macs"] == graph.total_macs() == sum(layer["macs"] for layer in plan["layers"])
    assert plan["arena"]["arena_bytes"] == generated.arena.size >= plan["arena"]["lower_bound_bytes"]
    for name in ("model.c", "model.h", "model_data.c", "model_data.h", "graph.json", "graph_params.npz"):
        assert (tmp_path / name).is_file()
    # the generated code calls kernels with literal shapes (specialized by the compiler)
    model_c = (tmp_path / "model.c").read_text()
    assert "mk_conv3px(" in model_c and "/*in_c*/ 32" in model_c


def test_generation_is_deterministic(digits_models, tmp_path):
    from malak_pipe.artifacts import sha256_of

    graph = lower_onnx(digits_models["mixed_int8"])
    generate(graph, tmp_path / "a")
    generate(lower_onnx(digits_models["mixed_int8"]), tmp_path / "b")
    assert sha256_of(tmp_path / "a") == sha256_of(tmp_path / "b")


def test_without_pool_fusion_the_pools_are_steps_and_still_bit_exact(host_harness, digits_models, tmp_path):
    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.mcu.selfcheck import host_check

    graph = lower_onnx(digits_models["cnn_int8"])
    generated = generate(graph, tmp_path / "unfused", CodegenOptions(fuse_pool=False))
    assert [s.kernel for s in generated.steps] == ["conv1", "maxpool", "conv3px", "maxpool", "conv3px", "fc6", "fc6"]
    assert all(s.ints.get("pool", 0) == 0 for s in generated.steps)
    assert host_check(graph, tmp_path / "unfused", 16) == 1.0
