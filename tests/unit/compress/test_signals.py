"""1-D networks (Conv1d, pooling 1-D) train, quantize by both torch routes and both ONNX routes,
export with parity, prune, distill and get a drift reference, on signals read from an .npz file."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from malak_pipe.compress import (
    QAT,
    DistillConfig,
    FeatureHint,
    KnowledgeDistiller,
    StaticPTQ,
    StaticPTQConfig,
    StructuredPruneConfig,
    StructuredPruner,
)
from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.deploy import api
from malak_pipe.deploy.drift import build_reference, check_drift
from malak_pipe.deploy.drift_shifts import shift_brightness
from malak_pipe.deploy.ort_runtime import OrtPredictor, agreement, top1
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.training import FitSettings, evaluate, fit
from tests.helpers.user_data import signals

torch.set_num_threads(1)


def har_net(channels: int = 3, classes: int = 4) -> nn.Sequential:
    """A human-activity-recognition style net: Conv1d / MaxPool1d blocks, global average pool, fc."""
    return nn.Sequential(
        nn.Conv1d(channels, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(), nn.AvgPool1d(2),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, classes),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sensors(tmp_path_factory):
    x, y = signals(320, channels=3, length=32, classes=4, seed=0)
    x_test, y_test = signals(80, channels=3, length=32, classes=4, seed=1)
    path = tmp_path_factory.mktemp("signals") / "sensors.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    return load_dataset(DataConfig(name="arrays", root=str(path)))


@pytest.fixture(scope="module", params=["ds_cnn", "har"])
def trained_1d(request, sensors):
    torch.manual_seed(0)
    if request.param == "ds_cnn":
        model = build_model(ModelConfig(name="ds_cnn", in_channels=3, num_classes=4, image_size=32, width_mult=0.25))
    else:
        model = har_net()
    fit(model, sensors, FitSettings(epochs=6, batch_size=32, lr=5e-3))
    return model.eval()


def test_1d_nets_learn_and_both_torch_routes_quantize(trained_1d, sensors):
    fp32 = evaluate(trained_1d, sensors).top1
    assert fp32 > 0.8
    ptq = StaticPTQ(StaticPTQConfig(calibration_batches=4, calibration_batch_size=32)).quantize(trained_1d, sensors)
    assert any(isinstance(m, torch.ao.nn.quantized.Conv1d) for m in ptq.modules())
    assert evaluate(ptq, sensors).top1 >= fp32 - 0.05
    qat = QAT()
    prepared = qat.train(qat.prepare(trained_1d), sensors, epochs=1, lr=1e-4)
    int8 = qat.convert(prepared)
    assert any(isinstance(m, torch.ao.nn.quantized.Conv1d) for m in int8.modules())
    assert evaluate(int8, sensors).top1 >= fp32 - 0.05


def test_1d_nets_export_and_take_both_onnx_routes(trained_1d, sensors, tmp_path):
    onnx_fp32, parity = api.export_onnx_checked(trained_1d, tmp_path / "fp32.onnx", sensors.val.x)
    assert parity.max_abs_diff < 1e-4
    x, y = sensors.test.x.numpy(), sensors.test.y.numpy()
    calibration = [(b, torch.zeros(len(b))) for b in sensors.calibration_batches(4, 32)]
    ort_int8 = api.quantize_onnx(onnx_fp32, tmp_path / "ort.onnx", calibration)
    ort_logits = OrtPredictor(ort_int8.path)(x)
    assert top1(ort_logits, y) >= evaluate(trained_1d, sensors).top1 - 0.05
    torch_int8 = StaticPTQ(StaticPTQConfig(calibration_batches=4, calibration_batch_size=32)).quantize(
        trained_1d, sensors
    )
    twin = api.export_int8_onnx(torch_int8, tmp_path / "twin.onnx", sensors.train.x[:32])
    torch_logits = torch_int8(sensors.test.x).numpy()
    assert agreement(OrtPredictor(twin.path)(x), torch_logits) >= 0.97


def test_1d_drift_reference_flags_a_shift(trained_1d, sensors):
    logits = trained_1d(sensors.train.x).detach().numpy()
    reference = build_reference(sensors.train.x.numpy(), logits, mean=sensors.mean, std=sensors.std)
    clean = sensors.test.x.numpy()
    assert not check_drift(reference, clean, trained_1d(sensors.test.x).detach().numpy()).drift
    shifted = shift_brightness(clean, 0.5, sensors.std)
    assert check_drift(reference, shifted, trained_1d(torch.from_numpy(shifted)).detach().numpy()).drift


def test_1d_structured_pruning_and_distillation_with_hints(trained_1d, sensors):
    pruned = copy.deepcopy(trained_1d)
    before = sum(p.numel() for p in pruned.parameters())
    StructuredPruner(StructuredPruneConfig(ratio=0.5)).run(pruned, sensors, FitSettings(epochs=1, batch_size=32))
    assert sum(p.numel() for p in pruned.parameters()) < before
    assert pruned(sensors.test.x[:4]).shape == (4, 4)
    teacher_layer = next(n for n, m in trained_1d.named_modules() if isinstance(m, nn.Conv1d))
    student_layer = next(n for n, m in pruned.named_modules() if isinstance(m, nn.Conv1d))
    distiller = KnowledgeDistiller(
        DistillConfig(hints=(FeatureHint(student_layer=student_layer, teacher_layer=teacher_layer),))
    )
    student = distiller.train(pruned, trained_1d, sensors, epochs=1, batch_size=32)
    assert distiller.last_fit.loss_curve and student(sensors.test.x[:2]).shape == (2, 4)
