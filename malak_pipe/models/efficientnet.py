"""EfficientNet-B0 (Tan & Le 2019) adapted to small inputs.

MBConv blocks (1x1 expand, kxk depthwise, squeeze-and-excitation, 1x1 linear projection) with
SiLU. The stem is 3x3 stride 1 and the first stride-2 stage (24 channels) keeps stride 1, so
32x32 inputs end at 2x2 instead of 1x1. Stochastic depth is left out (it has no parameters
and only matters for long ImageNet schedules). Parameter counts equal the reference B0's.
"""

from __future__ import annotations

import torch
from torch import nn

from malak_pipe.models.config import ModelConfig
from malak_pipe.models.layers import ConvBNAct, Multiply, ResidualAdd, init_weights, make_divisible

BN_EPS = 1e-3

# (expand ratio, kernel, stride, output channels, repeats); the reference has stride 2 for
# the 24-channel stage, small inputs keep it at 1.
MBCONV_SETTINGS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 1, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


class SqueezeExcitation(nn.Module):
    """Global average -> 1x1 conv -> SiLU -> 1x1 conv -> sigmoid -> channel scaling."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Sigmoid()
        self.scale = Multiply()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(x, self.gate(self.fc2(self.act(self.fc1(self.pool(x))))))


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-excitation; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = make_divisible(in_channels * expand_ratio)
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.SiLU, bn_eps=BN_EPS))
        layers.append(
            ConvBNAct(hidden, hidden, kernel, stride=stride, groups=hidden, activation=nn.SiLU, bn_eps=BN_EPS)
        )
        layers.append(SqueezeExcitation(hidden, max(1, in_channels // 4)))
        layers.append(ConvBNAct(hidden, out_channels, 1, activation=None, bn_eps=BN_EPS))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.skip_add = ResidualAdd() if self.use_residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip_add is not None:
            return self.skip_add(self.block(x), x)
        return self.block(x)


class EfficientNet(nn.Module):
    """features (stem, MBConv stages, 1x1 head) -> adaptive avg pool -> dropout -> linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        channels = make_divisible(32 * width_mult)
        features: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, stride=1, activation=nn.SiLU, bn_eps=BN_EPS)]
        for expand, kernel, stride, out, repeats in MBCONV_SETTINGS:
            out_channels = make_divisible(out * width_mult)
            stage = []
            for index in range(repeats):
                stage.append(MBConv(channels, out_channels, kernel, stride if index == 0 else 1, expand))
                channels = out_channels
            features.append(nn.Sequential(*stage))
        head_channels = 4 * channels
        features.append(ConvBNAct(channels, head_channels, 1, activation=nn.SiLU, bn_eps=BN_EPS))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head_channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.flatten(self.pool(self.features(x)))))


def build_efficientnet_b0(cfg: ModelConfig) -> EfficientNet:
    """EfficientNet-B0 for ``cfg`` (``image_size`` is free: the pool is adaptive)."""
    return EfficientNet(cfg.in_channels, cfg.num_classes, cfg.width_mult)
