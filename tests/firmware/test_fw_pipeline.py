"""digits SimpleCNN through the stages: codegen -> firmware_build -> sim_run (QEMU), every test image."""

from __future__ import annotations

import numpy as np
import pytest

from malak_pipe.engine.standalone import run_stage

pytestmark = pytest.mark.firmware


@pytest.fixture(scope="module")
def digits_pipeline_inputs(arm_tools, tmp_path_factory):
    """The digits dataset artifact and a SimpleCNN trained on it, quantized to QDQ int8."""
    import torch

    from malak_pipe.data.artifact import save_dataset
    from tests.helpers.mcu_models import calibration, digits_dataset, export_qdq, simple_cnn, train

    tmp = tmp_path_factory.mktemp("digits")
    dataset = digits_dataset()
    save_dataset(dataset, tmp / "dataset.json")
    torch.manual_seed(0)
    model = train(simple_cnn(), dataset, epochs=6)
    onnx_path = export_qdq(model, calibration(dataset), tmp / "model_int8.onnx", "int8")
    return dataset, tmp / "dataset.json", onnx_path


def test_digits_simple_cnn_is_bit_exact_on_target(digits_pipeline_inputs, mps2_target, tmp_path):
    from malak_pipe.stages.codegen import Codegen
    from malak_pipe.stages.firmware_build import FirmwareBuild
    from malak_pipe.stages.sim_run import SimRun

    dataset, dataset_path, onnx_path = digits_pipeline_inputs
    _, cg = run_stage(Codegen, {"host_check_images": 0}, {"model": onnx_path}, tmp_path)
    build, fw = run_stage(FirmwareBuild, {"target": mps2_target.model_dump()}, {"sources": cg["sources"]}, tmp_path)
    for key in ("flash_bytes", "ram_bytes", "arena_bytes", "param_bytes", "code_bytes", "stack_bytes", "macs"):
        assert build.metrics[key] > 0, key
    assert build.metrics["flash_bytes"] >= build.metrics["param_bytes"] + build.metrics["code_bytes"]
    inputs = {"firmware": fw["firmware"], "sources": cg["sources"], "data": dataset_path, "onnx_int8": onnx_path}
    sim, out = run_stage(SimRun, {"num_images": None}, inputs, tmp_path)
    m = sim.metrics
    assert m["images"] == len(dataset.test) > 300
    assert m["bit_exact_rate"] == 1.0 and m["bit_exact_mismatches"] == 0
    assert m["top1"] == m["golden_top1"] > 0.9
    assert m["ort_agreement"] >= 0.99
    assert m["instructions_per_inference"] > 0 and m["instructions_per_mac"] > 0
    per_layer = sum(layer["instructions"] for layer in m["layers"])
    assert per_layer == pytest.approx(m["instructions_per_inference"], rel=0.01)
    assert m["flash_bytes"] == build.metrics["flash_bytes"] and m["ram_bytes"] == build.metrics["ram_bytes"]
    assert out["report"].is_file()
    assert np.isfinite(m["instructions_per_mac"])
