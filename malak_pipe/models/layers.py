"""Small building blocks shared by the model zoo.

Every activation is an ``nn.Module`` (never functional, never inplace) and every tensor
addition or multiplication between two activations goes through a module
(:class:`ResidualAdd`, :class:`Multiply`), so eager-mode quantization can fuse conv+bn+relu and
swap the arithmetic for quantized versions without touching ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%.

    This is the rounding of the MobileNet/EfficientNet reference code, so widths match theirs.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ResidualAdd(nn.Module):
    """``a + b`` as a module, so quantization can replace it with a quantized add."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Multiply(nn.Module):
    """``a * b`` as a module (squeeze-excitation scaling), replaceable when quantizing."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation, as a Sequential so it can be fused.

    ``activation`` is a module class (nn.ReLU, nn.ReLU6, nn.SiLU) or None for no activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, unit BatchNorm, small-normal linears (the torchvision recipe)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Conv1d)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.zeros_(layer.bias)
