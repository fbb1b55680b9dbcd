"""MobileNetV2 (Sandler et al. 2018) adapted to small inputs.

Inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear projection) with ReLU6, a
3x3 stride-1 stem and the first stride-2 stage turned to stride 1, so 32x32 inputs are
downsampled three times (to 4x4) instead of five. Parameter counts equal the reference
architecture's for the same width, input channels and classes.
"""

from __future__ import annotations

import torch
from torch import nn

from malak_pipe.models.config import ModelConfig
from malak_pipe.models.layers import ConvBNAct, ResidualAdd, init_weights, make_divisible

# (expand ratio t, output channels c, repeats n, stride of the first block s). The reference
# has s=2 for the 24-channel stage; small inputs keep it at 1.
INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when t=1) -> 3x3 depthwise -> 1x1 project; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers.append(ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6))
        layers.append(ConvBNAct(hidden, out_channels, 1, activation=None))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.skip_add = ResidualAdd() if self.use_residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip_add is not None:
            return self.skip_add(x, self.conv(x))
        return self.conv(x)


class MobileNetV2(nn.Module):
    """features (stem, inverted residuals, 1x1 head conv) -> adaptive avg pool -> dropout -> linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, stride=1, activation=nn.ReLU6)]
        for expand, out, repeats, stride in INVERTED_RESIDUAL_SETTINGS:
            out_channels = make_divisible(out * width_mult)
            for index in range(repeats):
                features.append(InvertedResidual(channels, out_channels, stride if index == 0 else 1, expand))
                channels = out_channels
        features.append(ConvBNAct(channels, last_channels, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last_channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.flatten(self.pool(self.features(x)))))


def build_mobilenet_v2(cfg: ModelConfig) -> MobileNetV2:
    """MobileNetV2 for ``cfg`` (``image_size`` is free: the pool is adaptive)."""
    return MobileNetV2(cfg.in_channels, cfg.num_classes, cfg.width_mult)
