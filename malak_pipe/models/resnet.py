"""ResNet-18 (basic blocks) and ResNet-50 (bottleneck blocks) adapted to small inputs.

The stem is a single 3x3 stride-1 conv with no max-pool (the CIFAR variant of He et al.);
stages 2-4 halve the resolution. Each block ends ``relu(skip_add(residual, shortcut))`` with
the add and the relu as modules, and the conv+bn(+relu) pairs as fusable Sequentials.
"""

from __future__ import annotations

import torch
from torch import nn

from malak_pipe.models.config import ModelConfig
from malak_pipe.models.layers import ConvBNAct, ResidualAdd, init_weights, make_divisible

STAGE_STRIDES = (1, 2, 2, 2)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return ConvBNAct(in_channels, out_channels, 1, stride=stride, activation=None)


class BasicBlock(nn.Module):
    """3x3 conv-bn-relu -> 3x3 conv-bn, plus the (projected) input, then relu."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, width, 3, stride=stride)
        self.conv2 = ConvBNAct(width, width, 3, activation=None)
        self.downsample = _shortcut(in_channels, width, stride)
        self.skip_add = ResidualAdd()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.skip_add(self.conv2(self.conv1(x)), shortcut))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, as ResNet v1.5) -> 1x1 expand x4, plus shortcut, relu."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = ConvBNAct(in_channels, width, 1)
        self.conv2 = ConvBNAct(width, width, 3, stride=stride)
        self.conv3 = ConvBNAct(width, out_channels, 1, activation=None)
        self.downsample = _shortcut(in_channels, out_channels, stride)
        self.skip_add = ResidualAdd()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.skip_add(self.conv3(self.conv2(self.conv1(x))), shortcut))


class ResNet(nn.Module):
    """stem -> layer1..layer4 -> adaptive avg pool -> flatten -> fc."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: tuple[int, int, int, int],
        in_channels: int = 3,
        num_classes: int = 10,
        width_mult: float = 1.0,
    ):
        super().__init__()
        channels = make_divisible(64 * width_mult)
        self.stem = ConvBNAct(in_channels, channels, 3, stride=1)
        stages: list[nn.Sequential] = []
        for stage_index, (repeats, stride) in enumerate(zip(blocks_per_stage, STAGE_STRIDES, strict=True)):
            width = make_divisible(64 * 2**stage_index * width_mult)
            blocks = []
            for index in range(repeats):
                blocks.append(block(channels, width, stride if index == 0 else 1))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.flatten(self.pool(x)))


def build_resnet18(cfg: ModelConfig) -> ResNet:
    """ResNet-18 for ``cfg``: basic blocks (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), cfg.in_channels, cfg.num_classes, cfg.width_mult)


def build_resnet50(cfg: ModelConfig) -> ResNet:
    """ResNet-50 for ``cfg``: bottleneck blocks (3, 4, 6, 3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), cfg.in_channels, cfg.num_classes, cfg.width_mult)
