"""Evaluation of a classifier on one split of a dataset, or on a DataLoader: top-1, loss, per-class top-1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from malak_pipe.data.batches import batches, is_in_memory
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


def _eval_batches(data: Any, split: str, batch_size: int) -> tuple[Iterator[tuple[Any, Any]], int | None]:
    """The (x, y) batches to evaluate on, and the class count when the data knows it.

    An in-memory Dataset (its ``split``) or a Split is cut into ``batch_size`` slices; anything
    else is iterated as a DataLoader of (inputs, labels) batches.
    """
    if not (is_in_memory(data) or (hasattr(data, "x") and hasattr(data, "y"))):
        return _labelled(data), None
    x, y, num_classes = _split_tensors(data, split)
    if len(y) == 0:
        raise DataError(f"the '{split}' split is empty", hint="raise the split's size (val_fraction, max_*)")
    return (
        (x[start : start + batch_size], y[start : start + batch_size]) for start in range(0, len(y), batch_size)
    ), num_classes


def _labelled(data: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for x, y in batches(data):
        if y is None:
            raise DataError("the evaluation data yields inputs without labels", hint="yield (inputs, labels) batches")
        yield x, y


def _module_device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate(
    module: nn.Module,
    data: Any,
    split: str = "test",
    batch_size: int = 512,
    *,
    num_classes: int | None = None,
    return_predictions: bool = False,
) -> EvalResult:
    """Evaluate ``module`` in eval mode on ``data``'s ``split`` (or on a Split passed as ``data``).

    ``data`` may also be a DataLoader or any iterable of (inputs, labels) batches (``split``
    and ``batch_size`` are then unused); ``num_classes`` sizes ``per_class_top1`` when the data
    does not know it. The module's train/eval mode is restored afterwards.
    """
    pairs, known_classes = _eval_batches(data, split, batch_size)
    device = _module_device(module)
    was_training = module.training
    module.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    predictions, labels = [], []
    try:
        with torch.inference_mode():
            for xb, yb in pairs:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                logits = module(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
                predictions.append(logits.argmax(dim=1))
                labels.append(yb)
    finally:
        module.train(was_training)
    if not labels:
        raise DataError("the evaluation data yielded no batch", hint="pass a non-empty split or DataLoader")
    predicted, y = torch.cat(predictions).cpu(), torch.cat(labels).cpu()
    return EvalResult(
        top1=float((predicted == y).double().mean()),
        loss=float(loss_sum) / len(y),
        per_class_top1=per_class_accuracy(predicted, y, num_classes or known_classes),
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
