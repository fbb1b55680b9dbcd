"""The SimpleCNN of the Malak paper: three 3x3 convs, two max-pools, two linears.

On 28x28x1 inputs with 10 classes it has 458,570 parameters and 6,047,488 MACs. It is an
``nn.Sequential`` of named layers in execution order, so eager quantization can fuse
(conv, relu) and (linear, relu) pairs by name and the firmware code generator can lower it
layer by layer.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from malak_pipe.errors import ConfigError
from malak_pipe.models.config import ModelConfig
from malak_pipe.models.layers import make_divisible


class SimpleCNN(nn.Sequential):
    """conv3x3-relu-pool, conv3x3-relu-pool, conv3x3-relu, flatten, fc-relu, fc.

    The first linear takes ``conv3_channels * (image_size // 4) ** 2`` features, so any
    square input of at least 4 pixels works.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        widths: tuple[int, int, int, int] = (32, 64, 64, 128),
    ):
        if image_size < 4:
            raise ConfigError(
                f"simple_cnn needs an image of at least 4x4 pixels (two 2x2 max-pools), got {image_size}",
                path="model.image_size",
                hint="use an image_size >= 4",
            )
        conv1, conv2, conv3, hidden = widths
        pooled = image_size // 2 // 2
        super().__init__(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_channels, conv1, 3, padding=1)),
                    ("relu1", nn.ReLU()),
                    ("pool1", nn.MaxPool2d(2)),
                    ("conv2", nn.Conv2d(conv1, conv2, 3, padding=1)),
                    ("relu2", nn.ReLU()),
                    ("pool2", nn.MaxPool2d(2)),
                    ("conv3", nn.Conv2d(conv2, conv3, 3, padding=1)),
                    ("relu3", nn.ReLU()),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(conv3 * pooled * pooled, hidden)),
                    ("relu4", nn.ReLU()),
                    ("fc2", nn.Linear(hidden, num_classes)),
                ]
            )
        )


def build_simple_cnn(cfg: ModelConfig) -> SimpleCNN:
    """SimpleCNN for ``cfg``; ``width_mult`` scales the (32, 64, 64, 128) widths."""
    widths = tuple(make_divisible(w * cfg.width_mult) for w in (32, 64, 64, 128))
    return SimpleCNN(cfg.in_channels, cfg.num_classes, cfg.image_size, widths)  # type: ignore[arg-type]
