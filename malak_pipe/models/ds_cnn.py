"""DS-CNN: a depthwise-separable CNN for keyword spotting, on 1-D feature sequences.

After Zhang et al., "Hello Edge: Keyword Spotting on Microcontrollers" (2017): a strided stem
convolution, then blocks of depthwise convolution and pointwise (1x1) convolution, each
followed by batch norm and ReLU, global average pooling and one linear classifier. Here the
input is a sequence of feature frames (N x C x L: C MFCC coefficients or sensor channels over
L time steps), so every convolution is a Conv1d; the same shape suits human-activity
recognition from accelerometer channels. On 10 x 49 MFCC inputs with 12 classes (the Speech
Commands set-up) it has 25,484 parameters.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from malak_pipe.errors import ConfigError
from malak_pipe.models.config import ModelConfig
from malak_pipe.models.layers import init_weights, make_divisible

STEM_KERNEL = 10
STEM_STRIDE = 2
WIDTH = 64
BLOCKS = 4


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv1d (no bias, 'same'-style padding) -> BatchNorm1d -> ReLU, fusable as one unit."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv1d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False)),
                ("bn", nn.BatchNorm1d(out_channels)),
                ("relu", nn.ReLU()),
            ]
        )
    )


class DSCNN(nn.Sequential):
    """stem conv (k=10, stride 2) -> ``blocks`` x (depthwise k=3, pointwise 1x1) -> global average pool -> fc."""

    def __init__(
        self, in_channels: int = 10, num_classes: int = 12, length: int = 49, width: int = WIDTH, blocks: int = BLOCKS
    ):
        if length < STEM_STRIDE:
            raise ConfigError(
                f"ds_cnn needs sequences of at least {STEM_STRIDE} steps, got {length}",
                path="model.image_size",
                hint="model.image_size is the sequence length for 1-D models",
            )
        layers: list[tuple[str, nn.Module]] = [("stem", conv_bn_relu(in_channels, width, STEM_KERNEL, STEM_STRIDE))]
        for index in range(1, blocks + 1):
            layers.append((f"dw{index}", conv_bn_relu(width, width, 3, groups=width)))
            layers.append((f"pw{index}", conv_bn_relu(width, width, 1)))
        layers += [("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(width, num_classes))]
        super().__init__(OrderedDict(layers))
        init_weights(self)


def build_ds_cnn(cfg: ModelConfig) -> DSCNN:
    """DS-CNN for ``cfg``: ``in_channels`` features over ``image_size`` steps; ``width_mult`` scales the 64 channels."""
    return DSCNN(cfg.in_channels, cfg.num_classes, cfg.image_size, make_divisible(WIDTH * cfg.width_mult))
