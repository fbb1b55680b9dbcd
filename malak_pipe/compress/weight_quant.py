"""The layers whose weights take a bit-width, and the per-channel range of 4-bit weights.

* :func:`weight_layers`: the conv (any groups; depthwise when groups = input channels) and
  linear layers of a float model, by module name, with their weight shapes;
* :func:`mse_channel_scales`: the MSE-optimal clip. Starting from the min-max scale of each
  output channel it tries ``grid`` scales from ``floor`` x that scale up to the scale that
  clips nothing, and keeps per channel the one whose round-to-nearest, clamped to the integer
  range, has the smallest squared error. The min-max scale is among the candidates, so the
  error is never larger than plain min-max with round-to-nearest;
* :func:`weight_error`: the squared error of quantized weights relative to the weights' energy
  (what the sensitivity table reports for each clip).

Pure torch (no torch.ao): ``_quant_backend`` wraps the search in an observer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from malak_pipe.errors import ConfigError

WEIGHT_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class WeightLayer:
    """A layer with a weight bit-width: its module name, kind, weight shape and groups."""

    name: str
    kind: str  # conv | depthwise | linear
    weight_shape: tuple[int, ...]
    groups: int = 1

    @property
    def params(self) -> int:
        """Number of weights (the bias stays int32)."""
        count = 1
        for size in self.weight_shape:
            count *= size
        return count


def _kind(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return "linear"
    depthwise = layer.groups > 1 and layer.groups == layer.in_channels and layer.weight.shape[1] == 1
    return "depthwise" if depthwise else "conv"


def weight_layers(module: nn.Module) -> list[WeightLayer]:
    """The conv, depthwise and linear layers of a float model, in module order."""
    return [
        WeightLayer(name, _kind(layer), tuple(layer.weight.shape), int(getattr(layer, "groups", 1)))
        for name, layer in module.named_modules()
        if isinstance(layer, WEIGHT_LAYER_TYPES)
    ]


def check_layer_names(module: nn.Module, names: list[str] | tuple[str, ...], path: str) -> None:
    """ConfigError naming ``path`` when a name is not a conv/depthwise/linear layer of ``module``."""
    known = [layer.name for layer in weight_layers(module)]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"{unknown} are not conv, depthwise or linear layers of the {type(module).__name__}",
            path=path,
            hint=f"name layers by module path: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}",
        )


def _rows(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().reshape(weight.shape[0], -1).double()


def _rounded(rows: torch.Tensor, scales: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Round to nearest (half to even, as torch quantizes), clamped to [qmin, qmax], dequantized."""
    return torch.clamp(torch.round(rows / scales[:, None]), qmin, qmax) * scales[:, None]


def mse_channel_scales(
    weight: torch.Tensor, minmax_scales: torch.Tensor, qmin: int, qmax: int, *, grid: int = 64, floor: float = 0.3
) -> torch.Tensor:
    """Per output channel (axis 0), the candidate scale with the smallest squared rounding error.

    Candidates: ``grid`` ratios from ``floor`` to the one where the largest weight maps to
    ``qmax`` exactly (nothing clipped), times ``minmax_scales``, plus ratio 1 (min-max).
    Returns scales of ``minmax_scales``' dtype.
    """
    rows = _rows(weight)
    base = minmax_scales.detach().double()
    top = ((qmax - qmin) / 2.0) / qmax  # torch's symmetric scale is max|w| / ((qmax - qmin) / 2)
    ratios = sorted({*torch.linspace(floor, top, grid).tolist(), 1.0})
    best = base.clone()
    best_err = torch.full_like(base, float("inf"))
    for ratio in ratios:
        scales = torch.clamp(base * ratio, min=torch.finfo(torch.float32).eps)
        err = ((_rounded(rows, scales, qmin, qmax) - rows) ** 2).sum(dim=1)
        better = err < best_err
        best = torch.where(better, scales, best)
        best_err = torch.where(better, err, best_err)
    return best.to(minmax_scales.dtype)


def weight_error(weight: torch.Tensor, dequantized: torch.Tensor) -> float:
    """Squared error of quantized weights relative to the squared weights (0 for zero weights)."""
    rows = _rows(weight)
    energy = float((rows**2).sum())
    return float(((_rows(dequantized) - rows) ** 2).sum()) / energy if energy else 0.0
