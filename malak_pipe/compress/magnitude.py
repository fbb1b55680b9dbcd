"""Magnitude (L1) unstructured pruning: masks, schedules, sparsity and sparse size.

    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.5, schedule="gradual", steps=4))
    pruner.run(model, data, FitSettings(epochs=2, lr=1e-4))    # prune + fine-tune
    pruner.run(model, train_loader, FitSettings(epochs=2), val=val_loader)   # the same on loaders
    pruner.remove_masks(model)                                 # zeros become permanent
    pruner.sparsity(model)["overall"]                          # ~0.5

Masks are ``torch.nn.utils.prune`` re-parametrisations (``weight = weight_orig * weight_mask``),
so pruned weights stay zero while fine-tuning. Each pruning step first makes the current
mask permanent, then ranks the remaining magnitudes again: already-pruned weights are zero
and stay pruned, since the schedule never decreases.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from malak_pipe.compress.configs import MagnitudePruneConfig
from malak_pipe.compress.stepwise import StepwisePruner

_KINDS: dict[str, type[nn.Module]] = {"conv": nn.modules.conv._ConvNd, "linear": nn.Linear}


def polynomial_schedule(initial: float, final: float, steps: int) -> list[float]:
    """Sparsity after each of ``steps`` steps: s_t = s_f + (s_i - s_f) * (1 - t/n)^3, t = 1..n.

    The cubic schedule of Zhu & Gupta (2017) used by TFMOT's PolynomialDecay and SparseML:
    large steps early, while the network has redundant weights, small ones near the end.
    """
    return [final + (initial - final) * (1.0 - t / steps) ** 3 for t in range(1, steps + 1)]


def sparse_size_bytes(module: nn.Module) -> int:
    """Bytes of a bitmask + nonzero-values encoding of the conv/linear weights, dense elsewhere.

    Every weight tensor with two or more dimensions is stored as a bitmask (one bit per
    element, rounded up to whole bytes) plus its nonzero values at their own width (fp32: 4
    bytes); biases, BN parameters and buffers are stored dense. Raw tensor bytes, no
    container overhead: compare with :func:`dense_size_bytes`.
    """
    total = 0
    for name, tensor in module.state_dict().items():
        if name.endswith("_mask") or not torch.is_tensor(tensor):
            continue
        if name.endswith(("weight", "weight_orig")) and tensor.dim() >= 2:
            total += math.ceil(tensor.numel() / 8) + int(torch.count_nonzero(tensor)) * tensor.element_size()
            continue
        total += tensor.numel() * tensor.element_size()
    return total


def dense_size_bytes(module: nn.Module) -> int:
    """Raw bytes of every tensor of the state, stored dense (masks excluded)."""
    return sum(
        tensor.numel() * tensor.element_size()
        for name, tensor in module.state_dict().items()
        if torch.is_tensor(tensor) and not name.endswith("_mask")
    )


class MagnitudePruner(StepwisePruner):
    """L1 unstructured pruner of conv/linear weights driven by a :class:`MagnitudePruneConfig`."""

    def __init__(self, config: MagnitudePruneConfig | None = None):
        self.config = config or MagnitudePruneConfig()

    def layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The layers whose weights are pruned, in module order.

        Conv and/or Linear layers as ``layer_kinds`` says; ``skip_first``/``skip_last`` leave
        out the first/last of them (module order: for sequential models, the input and
        classifier layers), ``exclude`` leaves out layers by name. Biases and BN are never pruned.
        """
        kinds = tuple(_KINDS[kind] for kind in self.config.layer_kinds)
        found = [(name, layer) for name, layer in model.named_modules() if isinstance(layer, kinds)]
        if self.config.skip_first:
            found = found[1:]
        if self.config.skip_last:
            found = found[:-1]
        return [(name, layer) for name, layer in found if name not in self.config.exclude]

    def schedule(self) -> list[float]:
        """Target sparsity after each pruning step ([sparsity] when one-shot)."""
        if self.config.schedule == "one_shot":
            return [self.config.sparsity]
        return polynomial_schedule(self.config.initial_sparsity, self.config.sparsity, self.config.steps)

    def prune(self, model: nn.Module, sparsity: float | None = None) -> None:
        """Mask the smallest weights so that ``sparsity`` (default: the target) of them are zero."""
        target = self.config.sparsity if sparsity is None else sparsity
        layers = self.layers(model)
        if not layers:
            return
        self.remove_masks(model)
        weights = [layer.weight.detach().abs() for _, layer in layers]
        if self.config.scope == "global":
            masks = _split(_keep_mask(torch.cat([w.flatten() for w in weights]), target), weights)
        else:
            masks = [_keep_mask(w.flatten(), target).view_as(w) for w in weights]
        for (_, layer), mask in zip(layers, masks, strict=True):
            prune.custom_from_mask(layer, "weight", mask)

    def step_count(self) -> int:
        """Pruning steps of the schedule (1 when one-shot)."""
        return len(self.schedule())

    def run(
        self, model: nn.Module, data: Any, settings: Any | None = None, *, val: Any = None, progress: Any = None
    ) -> list[Any]:
        """Prune along the schedule with fine-tuning between steps and after the last one.

        ``data`` is an in-memory Dataset or a DataLoader of (inputs, labels) (validated on
        ``val``). ``settings`` (FitSettings) is the final fine-tune (None: none); between gradual
        steps the same settings run for ``epochs_per_step`` epochs. Masks stay in place (call
        :meth:`remove_masks`). Returns the FitResults in order.
        """
        steps = [functools.partial(self.prune, model, sparsity) for sparsity in self.schedule()]
        return self._prune_in_steps(steps, model, data, settings, progress, val)

    def remove_masks(self, model: nn.Module) -> None:
        """Make every mask permanent: ``weight`` becomes a plain parameter with its zeros."""
        for _, layer in model.named_modules():
            if prune.is_pruned(layer) and hasattr(layer, "weight_mask"):
                prune.remove(layer, "weight")

    def sparsity(self, model: nn.Module) -> dict[str, Any]:
        """Fraction of zero weights: "overall" over the pruned layers, "layers" per layer."""
        per_layer, zeros, total = {}, 0, 0
        for name, layer in self.layers(model):
            weight = layer.weight.detach()
            layer_zeros = int((weight == 0).sum())
            per_layer[name] = layer_zeros / weight.numel()
            zeros += layer_zeros
            total += weight.numel()
        return {"overall": zeros / total if total else 0.0, "layers": per_layer}


def _keep_mask(magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
    """1 for kept entries, 0 for the round(sparsity * n) smallest magnitudes (exact count)."""
    mask = torch.ones_like(magnitudes)
    count = int(round(sparsity * magnitudes.numel()))
    if count > 0:
        mask[torch.topk(magnitudes, count, largest=False).indices] = 0.0
    return mask


def _split(flat_mask: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    sizes = [tensor.numel() for tensor in like]
    return [part.view_as(tensor) for part, tensor in zip(flat_mask.split(sizes), like, strict=True)]
