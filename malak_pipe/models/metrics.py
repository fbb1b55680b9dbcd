"""Model size metrics: parameters, multiply-accumulates per inference, serialized bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch
from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements (trainable or not)."""
    return sum(param.numel() for param in module.parameters())


def _layer_macs(layer: nn.Module, output: torch.Tensor) -> int:
    if isinstance(layer, nn.modules.conv._ConvNd):
        kernel = 1
        for size in layer.kernel_size:
            kernel *= size
        return output[0].numel() * (layer.in_channels // layer.groups) * kernel
    if isinstance(layer, nn.Linear):
        return output[0].numel() * layer.in_features
    return 0


def count_macs(module: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on one sample of shape ``input_shape`` (C, H, W).

    Counted with forward hooks on convolutions (output elements x in_channels/groups x kernel
    area) and linears (output elements x in_features); other layers count zero. The module's
    train/eval mode is restored afterwards.
    """
    total = 0

    def hook(layer: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(layer, output)

    handles = [
        layer.register_forward_hook(hook)
        for layer in module.modules()
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear))
    ]
    was_training = module.training
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    try:
        module.eval()
        with torch.inference_mode():
            module(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return total


def serialized_bytes(module: nn.Module) -> int:
    """Bytes of ``torch.save(module.state_dict())``, written in memory."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def model_metrics(module: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """``{"params", "macs", "size_bytes"}`` under the project's standard metric names."""
    return {
        "params": count_parameters(module),
        "macs": count_macs(module, input_shape),
        "size_bytes": serialized_bytes(module),
    }
