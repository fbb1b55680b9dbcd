"""torch_model artifacts: round trips, checkpoints of channel-pruned models, bad files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from malak_pipe.errors import ArtifactError
from malak_pipe.models import ModelArtifact, ModelConfig, build_model, count_parameters
from malak_pipe.models.artifact import TORCH_MODEL, load_model, save_model

torch.set_num_threads(1)


def _conv_like(conv: nn.Conv2d, out_keep: torch.Tensor | None, in_keep: torch.Tensor | None) -> nn.Conv2d:
    """A copy of ``conv`` keeping some output / input channels (depthwise stays depthwise)."""
    weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
    depthwise = conv.groups == conv.in_channels and conv.groups > 1
    if out_keep is not None:
        weight = weight[out_keep]
        bias = None if bias is None else bias[out_keep]
    if in_keep is not None and not depthwise:
        weight = weight[:, in_keep]
    groups = weight.shape[0] if depthwise else conv.groups
    new = nn.Conv2d(
        weight.shape[1] * groups, weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
        groups=groups, bias=bias is not None,
    )  # fmt: skip
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


def _bn_like(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(keep), eps=bn.eps)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name).data.copy_(getattr(bn, name).detach()[keep])
    return new


def test_round_trip_keeps_config_and_outputs(tmp_path):
    cfg = ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=8)
    module = build_model(cfg).eval()
    path = tmp_path / "model.pt"
    TORCH_MODEL.save(ModelArtifact(cfg, module), path)
    loaded = TORCH_MODEL.load(path)
    assert loaded.config == cfg
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(loaded.module(x), module(x))
    assert not loaded.module.training


def test_channel_pruned_simple_cnn_loads_with_its_shapes(tmp_path):
    cfg = ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28)
    model = build_model(cfg).eval()
    keep2 = torch.arange(0, 64, 2)  # conv2: 64 -> 32 output channels
    keep3 = torch.arange(40)  # conv3: 64 -> 40 output channels
    model.conv2 = _conv_like(model.conv2, keep2, None)
    model.conv3 = _conv_like(model.conv3, keep3, keep2)
    fc1 = model.fc1
    weight = fc1.weight.detach().view(128, 64, 7, 7)[:, keep3].reshape(128, -1)
    model.fc1 = nn.Linear(weight.shape[1], 128)
    model.fc1.weight.data.copy_(weight)
    model.fc1.bias.data.copy_(fc1.bias.detach())

    path = tmp_path / "pruned.pt"
    save_model(ModelArtifact(cfg, model), path)
    loaded = load_model(path).module
    assert (loaded.conv2.out_channels, loaded.conv3.in_channels, loaded.conv3.out_channels) == (32, 32, 40)
    assert (loaded.fc1.in_features, loaded.fc1.out_features) == (40 * 49, 128)
    assert count_parameters(loaded) == count_parameters(model) < 458_570
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))


def test_pruned_depthwise_block_stays_depthwise(tmp_path):
    cfg = ModelConfig(name="mobilenet_v2", in_channels=3, num_classes=4, width_mult=0.5)
    model = build_model(cfg)
    with torch.no_grad():  # give BN running stats some life so a wrong reload would show
        model.train()(torch.randn(8, 3, 16, 16))
    model.eval()
    block = model.features[2].conv  # expand (1x1) -> depthwise (3x3) -> project (1x1)
    hidden = block[0][0].out_channels
    keep = torch.arange(0, hidden, 3)
    block[0][0] = _conv_like(block[0][0], keep, None)
    block[0][1] = _bn_like(block[0][1], keep)
    block[1][0] = _conv_like(block[1][0], keep, None)
    block[1][1] = _bn_like(block[1][1], keep)
    block[2][0] = _conv_like(block[2][0], None, keep)
    model.eval()  # the new BatchNorms start in train mode

    path = tmp_path / "pruned.pt"
    save_model(ModelArtifact(cfg, model), path)
    loaded = load_model(path).module
    depthwise = loaded.features[2].conv[1][0]
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == len(keep)
    assert loaded.features[2].conv[1][1].num_features == len(keep)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(loaded.features(x), model.features(x))
        assert torch.equal(loaded(x), model(x))


def test_not_a_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ArtifactError, match="junk.pt"):
        load_model(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ArtifactError, match="format"):
        load_model(other)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    cfg = ModelConfig(name="simple_cnn", image_size=8)
    path = tmp_path / "model.pt"
    save_model(ModelArtifact(cfg, build_model(cfg)), path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["config"]["name"] = "resnet18"
    torch.save(checkpoint, path)
    with pytest.raises(ArtifactError, match="do not fit"):
        load_model(path)
