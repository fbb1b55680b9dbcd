"""Quantization: static PTQ, QAT and dynamic PTQ give real int8 models that save and reload."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from malak_pipe.compress import (
    QAT,
    DynamicPTQ,
    DynamicPTQConfig,
    QATConfig,
    QuantizedModelArtifact,
    StaticPTQ,
    StaticPTQConfig,
)
from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.compress.quantize import _ObserveWhileTraining
from malak_pipe.errors import ArtifactError
from malak_pipe.models import ModelConfig, build_model, serialized_bytes
from malak_pipe.training import FitSettings, evaluate

from .conftest import MODEL

QUANTIZED_CONV = torch.ao.nn.quantized.Conv2d  # fused ConvReLU2d subclasses it
QUANTIZED_LINEAR = torch.ao.nn.quantized.Linear


def _static_int8(model, dataset, **fields):
    ptq = StaticPTQ(StaticPTQConfig(calibration_batches=4, calibration_batch_size=32, **fields))
    return ptq, ptq.quantize(model, dataset)


def test_static_ptq_runs_int8_kernels_and_keeps_accuracy(trained, dataset):
    _, int8 = _static_int8(trained, dataset)
    kinds = [type(m) for m in int8.modules()]
    assert sum(issubclass(k, QUANTIZED_CONV) for k in kinds) == 3
    assert sum(issubclass(k, QUANTIZED_LINEAR) for k in kinds) == 2
    assert int8.conv1.weight().dtype == torch.qint8
    weight = int8.conv1.weight()  # symmetric per channel: one scale per output channel, zero points 0
    assert weight.q_per_channel_scales().numel() == trained.conv1.out_channels
    assert not weight.q_per_channel_zero_points().any()
    # flatten shares its input's qparams, so its dequantize/quantize round trip is exact
    assert float(int8.flatten_scale_0) == pytest.approx(int8.conv3.scale)
    fp32_top1, int8_top1 = evaluate(trained, dataset).top1, evaluate(int8, dataset).top1
    assert fp32_top1 > 0.85 and int8_top1 >= fp32_top1 - 0.05


def test_calibration_reads_only_train_batches(trained):
    calls = []

    class Data:
        def calibration_batches(self, n_batches, batch_size, seed=0):
            calls.append((n_batches, batch_size, seed))
            return [torch.randn(batch_size, 1, 8, 8) for _ in range(n_batches)]

        def __getattr__(self, name):  # train/val/test or anything else: not allowed
            raise AssertionError(f"calibration touched data.{name}")

    StaticPTQ(StaticPTQConfig(calibration_batches=3, calibration_batch_size=16, seed=5)).quantize(trained, Data())
    assert calls == [(3, 16, 5)]


def test_int8_conv_net_is_about_four_times_smaller():
    model = build_model(ModelConfig(name="simple_cnn")).eval()  # 28x28, 458k parameters
    ptq = StaticPTQ(StaticPTQConfig())
    prepared = ptq.prepare(model)
    ptq.calibrate(prepared, [torch.randn(8, 1, 28, 28)])
    ratio = serialized_bytes(model) / serialized_bytes(ptq.convert(prepared))
    assert 3.8 < ratio < 4.1


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_int8_artifact_round_trip_is_exact_and_weights_only(trained, dataset, tmp_path, backend):
    ptq, int8 = _static_int8(trained, dataset, backend=backend, observer="minmax")
    path = tmp_path / "int8.pt"
    TORCH_MODEL_INT8.save(QuantizedModelArtifact(MODEL, ptq.recipe(trained, dataset.input_shape), int8), path)
    raw = torch.load(path, weights_only=True)
    assert raw["recipe"]["backend"] == backend and raw["recipe"]["input_shape"] == [1, 8, 8]
    loaded = TORCH_MODEL_INT8.load(path)
    assert loaded.config == MODEL and loaded.recipe.mode == "static"
    x = dataset.test.x[:16]
    assert torch.equal(loaded.module(x), int8(x))
    layers = loaded.quantized_layers()
    assert [layer["name"] for layer in layers] == ["conv1", "conv2", "conv3", "fc1", "fc2"]
    assert len(layers[0]["weight_scales"]) == trained.conv1.out_channels


def test_bad_int8_file_raises_artifact_error(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="not a malak-pipe int8 checkpoint"):
        TORCH_MODEL_INT8.load(path)
    torch.save({"format": 1, "config": {}, "recipe": {"mode": "magic"}, "state_dict": {}}, path)
    with pytest.raises(ArtifactError, match="invalid"):
        TORCH_MODEL_INT8.load(path)


def test_qat_trains_converts_and_reloads(trained, dataset, tmp_path):
    qat = QAT(QATConfig(freeze_observers_after_epoch=1, freeze_bn_after_epoch=1))
    prepared = qat.prepare(trained)
    result = qat.train(prepared, dataset, FitSettings(epochs=2, batch_size=32, lr=1e-4))
    assert len(result.loss_curve) == 2
    int8 = qat.convert(prepared)
    assert any(isinstance(m, QUANTIZED_CONV) for m in int8.modules())
    assert evaluate(int8, dataset).top1 >= evaluate(trained, dataset).top1 - 0.05
    path = tmp_path / "qat.pt"
    TORCH_MODEL_INT8.save(QuantizedModelArtifact(MODEL, qat.recipe(trained, dataset.input_shape), int8), path)
    x = dataset.test.x[:8]
    assert torch.equal(TORCH_MODEL_INT8.load(path).module(x), int8(x))


def test_qat_freeze_schedule():
    qat = QAT(QATConfig(freeze_observers_after_epoch=2, freeze_bn_after_epoch=1))
    assert [qat.observers_frozen(e) for e in (1, 2, 3)] == [False, False, True]
    assert [qat.bn_frozen(e) for e in (1, 2, 3)] == [False, True, True]
    assert not QAT().observers_frozen(100)


def test_qat_ranges_move_only_in_training_mode():
    model = ModelConfig(name="mobilenet_v2", in_channels=1, num_classes=4, image_size=8, width_mult=0.25)
    prepared = QAT().prepare(build_model(model))
    trainee = _ObserveWhileTraining(prepared)
    ranges = [m for m in prepared.modules() if isinstance(m, torch.ao.quantization.FakeQuantize)]

    def snapshot():
        return [(m.activation_post_process.min_val.clone(), m.activation_post_process.max_val.clone()) for m in ranges]

    trainee.train()
    trainee(torch.randn(4, 1, 8, 8))
    before = snapshot()
    trainee.eval()
    trainee(torch.randn(4, 1, 8, 8) * 10)
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(before, snapshot(), strict=True))
    trainee.train()
    trainee(torch.randn(4, 1, 8, 8) * 10)
    assert any(not torch.equal(b, d) for (_, b), (_, d) in zip(before, snapshot(), strict=True))


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_static_ptq_quantizes_residual_adds(name, tmp_path):
    cfg = ModelConfig(name=name, in_channels=1, num_classes=4, image_size=8, width_mult=0.25)
    model = build_model(cfg).eval()
    ptq = StaticPTQ(StaticPTQConfig(observer="minmax"))
    prepared = ptq.prepare(model)
    ptq.calibrate(prepared, [torch.randn(8, 1, 8, 8)])
    int8 = ptq.convert(prepared)
    assert "torch.ops.quantized.add" in int8.code
    path = tmp_path / "m.pt"
    TORCH_MODEL_INT8.save(QuantizedModelArtifact(cfg, ptq.recipe(model, (1, 8, 8)), int8), path)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(TORCH_MODEL_INT8.load(path).module(x), int8(x))


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def test_dynamic_ptq_converts_linear_and_lstm():
    torch.manual_seed(0)
    model = _Recurrent().eval()
    ptq = DynamicPTQ(DynamicPTQConfig())
    int8 = ptq.quantize(model)
    assert isinstance(int8.lstm, torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(int8.head, torch.ao.nn.quantized.dynamic.Linear)
    x = torch.randn(3, 5, 8)
    assert torch.allclose(int8(x), model(x), atol=0.05)
    assert ptq.quantizable_fraction(model) == 1.0
    assert DynamicPTQ(DynamicPTQConfig(layers=("linear",))).quantizable_fraction(model) < 0.1


def test_dynamic_ptq_artifact_round_trip(trained, tmp_path):
    ptq = DynamicPTQ()
    int8 = ptq.quantize(trained)
    assert 0.0 < ptq.quantizable_fraction(trained) < 0.5  # a conv net: most weights are in convs
    path = tmp_path / "dyn.pt"
    TORCH_MODEL_INT8.save(QuantizedModelArtifact(MODEL, ptq.recipe(trained, (1, 8, 8)), int8), path)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(TORCH_MODEL_INT8.load(path).module(x), int8(x))


def test_quantized_channel_pruned_model_reloads_with_its_pruned_shapes(trained, dataset, tmp_path):
    from malak_pipe.compress import StructuredPruneConfig, StructuredPruner

    StructuredPruner(StructuredPruneConfig(ratio=0.5)).prune(trained, dataset.input_shape)
    ptq, int8 = _static_int8(trained, dataset)
    path = tmp_path / "pruned_int8.pt"
    # saved with the ORIGINAL config: the recipe's float shapes carry the pruned widths
    TORCH_MODEL_INT8.save(QuantizedModelArtifact(MODEL, ptq.recipe(trained, dataset.input_shape), int8), path)
    loaded = TORCH_MODEL_INT8.load(path).module
    assert loaded.conv1.weight().shape[0] == trained.conv1.out_channels < 16
    x = dataset.test.x[:8]
    assert torch.equal(loaded(x), int8(x))


def test_qat_freezes_batch_norm_statistics(dataset):
    cfg = ModelConfig(name="mobilenet_v2", in_channels=1, num_classes=4, image_size=8, width_mult=0.25)
    torch.manual_seed(0)
    qat = QAT(QATConfig(freeze_bn_after_epoch=0))
    prepared = qat.prepare(build_model(cfg))
    fused = [m for m in prepared.modules() if isinstance(m, torch.ao.nn.intrinsic.qat.ConvBn2d)]
    assert fused and not any(m.freeze_bn for m in fused)
    bn = fused[0].bn
    running_mean = bn.running_mean.clone()
    qat.train(prepared, dataset, FitSettings(epochs=1, batch_size=32, lr=1e-4, max_batches_per_epoch=2))
    assert all(m.freeze_bn for m in fused)
    assert torch.equal(bn.running_mean, running_mean)


def test_payload_bytes_of_int8_is_about_a_quarter(trained, dataset):
    from malak_pipe.compress.report import payload_bytes

    _, int8 = _static_int8(trained, dataset)
    assert 3.0 < payload_bytes(trained) / payload_bytes(int8) <= 4.0


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(x) if x.sum() > 0 else self.head(-x)


def test_untraceable_model_fails_with_a_hint():
    from malak_pipe.errors import StageFailed

    with pytest.raises(StageFailed, match="could not trace") as info:
        StaticPTQ().prepare(_Branchy())
    assert "ptq_dynamic" in info.value.hint
