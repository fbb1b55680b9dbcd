"""The deployment API on DataLoaders (malak_pipe.deploy.api) gives what the array path gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from malak_pipe.deploy import api
from malak_pipe.deploy.configs import OnnxExportConfig, OrtQuantConfig, ProfileConfig, TorchQDQConfig
from malak_pipe.deploy.onnx_export import check_parity, export_onnx, torch_logits
from malak_pipe.deploy.onnx_quant import quantize_ort_static
from malak_pipe.deploy.ort_runtime import OrtPredictor
from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq
from malak_pipe.errors import StageFailed

torch.set_num_threads(1)


def _loader(split, batch_size=32):
    return DataLoader(TensorDataset(split.x, split.y), batch_size=batch_size)


def test_export_with_parity_on_a_loader(tmp_path, trained, digits):
    config = OnnxExportConfig(parity_samples=40)
    model, parity = api.export_onnx_checked(trained, tmp_path / "m.onnx", _loader(digits.val), config)
    assert model.path.is_file() and parity.n == 40 and parity.max_abs_diff < 1e-4
    x = digits.val.x[:40].numpy()
    export_onnx(trained, digits.input_shape, tmp_path / "ref.onnx", config)
    reference = check_parity(torch_logits(trained, x), OrtPredictor(tmp_path / "ref.onnx")(x), atol=1e-4)
    assert parity.max_abs_diff == pytest.approx(reference.max_abs_diff, abs=1e-7)
    with pytest.raises(StageFailed, match="differs from PyTorch"):
        api.export_onnx_checked(trained, tmp_path / "tight.onnx", digits.val.x, OnnxExportConfig(parity_atol=1e-12))


def test_int8_onnx_routes_on_a_loader_match_the_array_path(tmp_path, trained, int8_artifact, digits):
    fp32 = export_onnx(trained, digits.input_shape, tmp_path / "fp32.onnx")
    batches = digits.calibration_batches(4, 32, seed=1)
    loader = DataLoader(TensorDataset(torch.cat(batches), torch.zeros(128, dtype=torch.long)), batch_size=32)
    config = OrtQuantConfig(calibration_batches=4)
    got = api.quantize_onnx(fp32, tmp_path / "a.onnx", loader, config)
    quantize_ort_static(fp32, [b.numpy() for b in batches], tmp_path / "b.onnx", config)
    x = digits.test.x.numpy()
    assert np.array_equal(OrtPredictor(got.path)(x), OrtPredictor(tmp_path / "b.onnx")(x))

    sample = torch.cat(batches)[:32]
    twin = api.export_int8_onnx(int8_artifact.module, tmp_path / "c.onnx", loader, TorchQDQConfig(), backend="x86")
    export_torch_int8_qdq(int8_artifact.module, digits.input_shape, tmp_path / "d.onnx", calibration_sample=sample)
    assert np.array_equal(OrtPredictor(twin.path)(x), OrtPredictor(tmp_path / "d.onnx")(x))


def test_profile_takes_modules_and_files(tmp_path, trained, int8_artifact, digits):
    fp32 = export_onnx(trained, digits.input_shape, tmp_path / "fp32.onnx")
    config = ProfileConfig(warmup=1, runs=4, rounds=2, per_layer_runs=1, memory=False)
    models = {"torch_fp32": trained, "torch_int8": int8_artifact.module, "onnx_fp32": fp32.path}
    report = api.profile(models, _loader(digits.test), config, engine="x86")
    rows = {row["variant"]: row for row in report["latency"]}
    assert set(rows) == set(models) and all(row["median_ms"] > 0 for row in rows.values())
    assert rows["torch_fp32"]["speedup_vs_torch_fp32"] == pytest.approx(1.0)
    assert set(report["per_layer"]) == set(models) and report["per_layer"]["torch_fp32"]
    assert api.profile({"torch_fp32": trained}, (1, 8, 8), config)["latency"][0]["batch_size"] == 1
