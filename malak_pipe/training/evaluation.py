"""Evaluation of a classifier on one split of a dataset: top-1, loss, per-class top-1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from malak_pipe.errors import DataError


@dataclass
class EvalResult:
    """Top-1 accuracy and mean cross-entropy over ``n`` samples.

    ``per_class_top1[c]`` is the accuracy on the samples of class ``c`` (None when the split
    has none of them). ``predictions`` holds the predicted class of every sample, in order,
    when asked for.
    """

    top1: float
    loss: float
    per_class_top1: list[float | None]
    n: int
    predictions: torch.Tensor | None = field(default=None, repr=False)


def _split_tensors(data: Any, split: str) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """(x, y, num_classes) from a Dataset and a split name, or from a Split itself."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y, None
    part = getattr(data, split, None)
    if part is None or not hasattr(part, "x"):
        raise DataError(f"the dataset has no split '{split}'", hint="use one of train, val, test")
    return part.x, part.y, getattr(data, "num_classes", None)


def _module_device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate(
    module: nn.Module,
    data: Any,
    split: str = "test",
    batch_size: int = 512,
    *,
    return_predictions: bool = False,
) -> EvalResult:
    """Evaluate ``module`` in eval mode on ``data``'s ``split`` (or on a Split passed as ``data``).

    The module's train/eval mode is restored afterwards.
    """
    x, y, num_classes = _split_tensors(data, split)
    if len(y) == 0:
        raise DataError(f"the '{split}' split is empty", hint="raise the split's size (val_fraction, max_*)")
    device = _module_device(module)
    was_training = module.training
    module.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    predictions = []
    try:
        with torch.inference_mode():
            for start in range(0, len(y), batch_size):
                xb = x[start : start + batch_size].to(device, non_blocking=True)
                yb = y[start : start + batch_size].to(device, non_blocking=True)
                logits = module(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
                predictions.append(logits.argmax(dim=1))
    finally:
        module.train(was_training)
    predicted = torch.cat(predictions).cpu()
    return EvalResult(
        top1=float((predicted == y).double().mean()),
        loss=float(loss_sum) / len(y),
        per_class_top1=per_class_accuracy(predicted, y, num_classes),
        n=len(y),
        predictions=predicted if return_predictions else None,
    )


def per_class_accuracy(
    predicted: torch.Tensor, target: torch.Tensor, num_classes: int | None = None
) -> list[float | None]:
    """Accuracy per class of ``target``; None for classes with no sample."""
    classes = num_classes if num_classes is not None else int(target.max()) + 1
    totals = torch.bincount(target, minlength=classes)
    hits = torch.bincount(target[predicted == target], minlength=classes)
    return [float(h) / float(t) if t > 0 else None for h, t in zip(hits.tolist(), totals.tolist(), strict=True)]
