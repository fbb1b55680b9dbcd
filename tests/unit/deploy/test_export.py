"""ONNX export: parity with PyTorch for every zoo model, BN folding, bad files, the export stage."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from malak_pipe.deploy.artifact import load_onnx
from malak_pipe.deploy.configs import OnnxExportConfig
from malak_pipe.deploy.onnx_export import check_parity, compare_logits, export_onnx, torch_logits
from malak_pipe.deploy.ort_runtime import OrtPredictor
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ArtifactError, StageFailed
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.stages.export_onnx import ExportONNX

torch.set_num_threads(1)

ZOO = ["simple_cnn", "mobilenet_v2", "resnet18", "resnet50", "efficientnet_b0"]


def _randomize_bn(module: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so folding them wrongly would show in the logits."""
    gen = torch.Generator().manual_seed(0)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            layer.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            layer.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            layer.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_exports_with_bn_folded_and_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    module = build_model(ModelConfig(name=name, in_channels=3, num_classes=5, image_size=8, width_mult=0.25))
    _randomize_bn(module)
    module.eval()
    model = export_onnx(module, (3, 8, 8), tmp_path / "m.onnx")
    assert "BatchNormalization" not in model.op_types
    assert model.opset == 18 and not model.proto.graph.initializer[0].external_data
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    reference = torch_logits(module, x)
    assert np.abs(reference).max() > 1e-3  # a real signal, not all-zero logits
    report = check_parity(reference, OrtPredictor(model.path)(x), atol=1e-4)
    assert report.max_abs_diff <= 1e-4 and report.top1_agreement == 1.0 and report.n == 4


def test_dynamic_batch_axis(tmp_path, trained):
    model = export_onnx(trained, (1, 8, 8), tmp_path / "dyn.onnx", OnnxExportConfig(dynamic_batch=True))
    dim = model.proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert not dim.HasField("dim_value")
    predictor = OrtPredictor(model.path)
    assert predictor.fixed_batch is None
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    assert predictor(x).shape == (5, 10)


def test_parity_failure_names_worst_sample_and_output():
    reference = np.zeros((3, 4), dtype=np.float32)
    candidate = reference.copy()
    candidate[2, 1] = 0.5
    candidate[0, 3] = 1e-5
    report = compare_logits(reference, candidate)
    assert (report.worst_sample, report.worst_output, report.max_abs_diff) == (2, 1, 0.5)
    with pytest.raises(StageFailed, match="sample 2, output 1"):
        check_parity(reference, candidate, atol=1e-4)
    with pytest.raises(StageFailed, match="tolerance"):
        check_parity(reference, np.full_like(reference, np.nan), atol=1e-4)


def test_loading_a_file_that_is_not_onnx_names_it(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf")
    with pytest.raises(ArtifactError, match="notes.onnx") as info:
        load_onnx(bad)
    assert "not a valid ONNX model" in str(info.value)
    with pytest.raises(ArtifactError, match="no such ONNX file"):
        load_onnx(tmp_path / "missing.onnx")
    empty = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    onnx.save_model(empty, str(tmp_path / "empty.onnx"))
    with pytest.raises(ArtifactError, match="no nodes"):
        load_onnx(tmp_path / "empty.onnx")


def test_predictor_refuses_wrong_shape(tmp_path, trained):
    model = export_onnx(trained, (1, 8, 8), tmp_path / "m.onnx")
    with pytest.raises(Exception, match="do not fit the model's input"):
        OrtPredictor(model.path)(np.zeros((2, 3, 8, 8), dtype=np.float32))


def test_export_stage_reports_parity_and_ort_accuracy(artifacts, digits, tmp_path):
    result, outputs = run_stage(
        ExportONNX, {}, {"model": artifacts["torch_model"], "data": artifacts["dataset"]}, tmp_path
    )
    m = result.metrics
    assert m["parity_max_abs_diff"] <= 1e-4 and m["parity_top1_agreement"] == 1.0
    assert m["opset"] == 18 and m["onnx_bytes"] == outputs["model"].stat().st_size
    assert m["test_top1"] > 0.9
    assert outputs["model"].name == "onnx_model.model.onnx"
    assert load_onnx(outputs["model"]).proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
