"""Your own models, as plain PyTorch: the pipeline builds them from an import string.

    malak-run model.name=factory model.factory=custom_models:small_cnn +model.kwargs.classes=10

(run from this folder, or with it on PYTHONPATH). The module's source enters the cache key of
every node built from it, so editing it re-runs what depends on it.
"""

from __future__ import annotations

from torch import nn


def small_cnn(channels: int = 1, classes: int = 10, size: int = 28, width: int = 16) -> nn.Module:
    """Two conv-BN-ReLU-maxpool blocks and a linear classifier, for size x size images."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (size // 4) ** 2, classes),
    )


def sensor_cnn(channels: int = 3, classes: int = 4, width: int = 16) -> nn.Module:
    """A 1-D CNN for sensor windows (N x channels x length): Conv1d blocks, global average pool."""
    return nn.Sequential(
        nn.Conv1d(channels, width, 5, padding=2, bias=False),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm1d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(2 * width, classes),
    )
