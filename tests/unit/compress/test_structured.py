"""Structured pruning: channels really go, the model shrinks, still trains and reloads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from malak_pipe.compress import StructuredPruneConfig, StructuredPruner
from malak_pipe.compress.report import latency_ms
from malak_pipe.errors import ConfigError
from malak_pipe.models import ModelArtifact, ModelConfig, build_model, count_macs, count_parameters, serialized_bytes
from malak_pipe.models.artifact import TORCH_MODEL

SHAPE = (1, 16, 16)
CASES = {
    "simple_cnn": ModelConfig(name="simple_cnn", in_channels=1, num_classes=4, image_size=16),
    "mobilenet_v2": ModelConfig(name="mobilenet_v2", in_channels=1, num_classes=4, image_size=16, width_mult=0.25),
}


def _loss_after_steps(model, x, y, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", list(CASES))
def test_pruned_model_is_smaller_trains_and_reloads(name, tmp_path):
    torch.manual_seed(0)
    cfg = CASES[name]
    model = build_model(cfg).eval()
    before = (count_parameters(model), count_macs(model, SHAPE), serialized_bytes(model))
    StructuredPruner(StructuredPruneConfig(ratio=0.4)).prune(model, SHAPE)
    after = (count_parameters(model), count_macs(model, SHAPE), serialized_bytes(model))
    assert all(a < 0.8 * b for a, b in zip(after, before, strict=True))
    x, y = torch.randn(8, *SHAPE), torch.randint(0, 4, (8,))
    assert model.eval()(x).shape == (8, 4)
    losses = _loss_after_steps(model, x, y, 3)
    assert losses[-1] < losses[0]
    path = tmp_path / "pruned.pt"
    TORCH_MODEL.save(ModelArtifact(cfg, model), path)
    loaded = TORCH_MODEL.load(path).module
    assert count_parameters(loaded) == after[0]
    assert torch.equal(loaded(x), model.eval()(x))


def test_classifier_outputs_are_never_pruned():
    model = build_model(CASES["simple_cnn"]).eval()
    StructuredPruner(StructuredPruneConfig(ratio=0.5, scope="global")).prune(model, SHAPE)
    assert model.fc2.out_features == 4
    assert model.fc1.out_features < 128 and model.conv1.out_channels < 32


def test_pruned_model_runs_faster_at_batch_one():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28)).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = latency_ms(model, (1, 28, 28), repeats=20)
        StructuredPruner(StructuredPruneConfig(ratio=0.5)).prune(model, (1, 28, 28))
        after = latency_ms(model, (1, 28, 28), repeats=20)
    finally:
        torch.set_num_threads(threads)
    assert after < before


def test_bn_scale_importance_prunes_by_gamma():
    torch.manual_seed(0)
    cfg = ModelConfig(name="resnet18", in_channels=1, num_classes=4, image_size=16, width_mult=0.25)
    model = build_model(cfg).eval()
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.weight.data.uniform_(0.1, 1.0)
    before = count_parameters(model)
    StructuredPruner(StructuredPruneConfig(ratio=0.3, importance="bn_scale", scope="global")).prune(model, SHAPE)
    assert count_parameters(model) < 0.8 * before


def test_bad_settings_raise_config_errors():
    model = build_model(CASES["simple_cnn"])
    with pytest.raises(ConfigError, match="no BatchNorm"):
        StructuredPruner(StructuredPruneConfig(importance="bn_scale")).prune(model, SHAPE)
    with pytest.raises(ConfigError, match="ignore_layers"):
        StructuredPruner(StructuredPruneConfig(ignore_layers=("nope",))).prune(model, SHAPE)
