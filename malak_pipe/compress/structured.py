"""Structured (channel) pruning with torch-pruning: a smaller dense model, really.

    pruner = StructuredPruner(StructuredPruneConfig(ratio=0.3, importance="l1"))
    pruner.prune(model, input_shape=(1, 28, 28))        # channels removed in place
    pruner.run(model, data, FitSettings(epochs=2))      # prune + fine-tune
    pruner.run(model, train_loader, FitSettings(epochs=2), val=val_loader)

torch-pruning traces the model once and builds dependency groups: the channels of a conv,
the BN after it, the next conv's input channels, every layer tied to them through a residual
add and the depthwise conv that must follow its input, are removed together, so the result
is consistent. The final classifier (the last conv/linear to run) keeps all its outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from malak_pipe.compress.configs import StructuredPruneConfig
from malak_pipe.compress.stepwise import StepwisePruner
from malak_pipe.data.batches import sample_shape
from malak_pipe.errors import ConfigError

_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


def classifier_layer(model: nn.Module, input_shape: Sequence[int]) -> nn.Module:
    """The conv/linear layer that runs last in a forward pass (the classifier head)."""
    order: list[nn.Module] = []
    handles = [
        layer.register_forward_hook(lambda layer, _inputs, _output: order.append(layer))
        for layer in model.modules()
        if isinstance(layer, _WEIGHTED)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not order:
        raise ConfigError("the model has no conv or linear layer to prune", hint="use another model")
    return order[-1]


def _importance(kind: str) -> Any:
    import torch_pruning as tp

    if kind == "bn_scale":
        return tp.importance.BNScaleImportance()
    return tp.importance.GroupMagnitudeImportance(p=1 if kind == "l1" else 2)


class StructuredPruner(StepwisePruner):
    """Channel pruner driven by a :class:`StructuredPruneConfig` (torch-pruning's MetaPruner)."""

    def __init__(self, config: StructuredPruneConfig | None = None):
        self.config = config or StructuredPruneConfig()

    def ignored_layers(self, model: nn.Module, input_shape: Sequence[int]) -> list[nn.Module]:
        """The classifier plus the layers named in ``ignore_layers`` (their outputs stay whole)."""
        named = dict(model.named_modules())
        missing = [name for name in self.config.ignore_layers if name not in named]
        if missing:
            raise ConfigError(
                f"ignore_layers names layers the model does not have: {missing}",
                path="ignore_layers",
                hint="use module paths from model.named_modules(), e.g. 'features.3'",
            )
        return [classifier_layer(model, input_shape), *(named[name] for name in self.config.ignore_layers)]

    def pruner(self, model: nn.Module, input_shape: Sequence[int]) -> Any:
        """The torch-pruning MetaPruner for ``model`` (built on a traced dependency graph)."""
        import torch_pruning as tp

        if self.config.importance == "bn_scale" and not any(
            isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in model.modules()
        ):
            raise ConfigError(
                "importance=bn_scale ranks channels by the batch-norm scale, but the model has no BatchNorm",
                path="importance",
                hint="use importance l1 or l2 for models without batch norm (simple_cnn)",
            )
        was_training = model.training
        model.eval()
        try:
            return tp.pruner.MetaPruner(
                model,
                torch.zeros((1, *input_shape)),
                importance=_importance(self.config.importance),
                global_pruning=self.config.scope == "global",
                pruning_ratio=self.config.ratio,
                max_pruning_ratio=self.config.max_layer_ratio,
                iterative_steps=self.config.iterative_steps,
                ignored_layers=self.ignored_layers(model, input_shape),
                round_to=self.config.round_to,
            )
        finally:
            model.train(was_training)

    def prune(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        """Remove channels in place, all ``iterative_steps`` at once (no fine-tuning between)."""
        self.run(model, None, None, input_shape=input_shape)

    def run(
        self,
        model: nn.Module,
        data: Any,
        settings: Any | None,
        *,
        input_shape: Sequence[int] | None = None,
        val: Any = None,
        progress: Any = None,
    ) -> list[Any]:
        """Prune in ``iterative_steps`` steps, fine-tuning ``epochs_per_step`` epochs between
        steps and with ``settings`` (FitSettings; None: no fine-tune) after the last one.

        ``data`` is an in-memory Dataset or a DataLoader of (inputs, labels) (validated on
        ``val``). ``input_shape`` defaults to the data's sample shape (for a loader, read from
        its first batch, which advances a loader's own shuffling generator). Returns the
        FitResults in order.
        """
        shape = tuple(input_shape) if input_shape is not None else sample_shape(data)
        pruner = self.pruner(model, shape)
        steps = [functools.partial(_step, pruner, model)] * self.step_count()
        return self._prune_in_steps(steps, model, data, settings, progress, val)

    def step_count(self) -> int:
        """The configured ``iterative_steps``."""
        return self.config.iterative_steps


def _step(pruner: Any, model: nn.Module) -> None:
    """One torch-pruning step (channels removed in place), the model in eval mode."""
    model.eval()
    with torch.no_grad():
        pruner.step()
