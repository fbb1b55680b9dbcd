"""Where the training loop's batches come from: the in-memory Dataset, or any DataLoader.

:class:`TensorBatches` is the fast path of an in-memory Dataset: each epoch cuts batches from
the train tensors with a seeded ``randperm`` (and the dataset's augmentation when asked).
:class:`LoaderBatches` re-iterates a user's DataLoader (or any re-iterable of ``(inputs,
labels)`` batches) every epoch; its order and augmentation are the loader's own. Both skip a
batch of one sample (BatchNorm cannot train on it) and stop after ``max_batches_per_epoch``.

A DataLoader over the same tensors in the same order gives the same batches as the fast path:
``dataset.loader("train", batch_size, shuffle=True, seed=settings.seed)`` draws the same
permutations as :class:`TensorBatches` (without augmentation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch

from malak_pipe.data.batches import as_pair, batch_source, is_in_memory, is_one_shot
from malak_pipe.errors import ConfigError, DataError
from malak_pipe.training.settings import FitSettings

Batch = tuple[torch.Tensor, torch.Tensor]


class TrainBatches(Protocol):
    """The training batches of each epoch; ``steps`` per epoch (None when the loader has no length)."""

    steps: int | None

    def epoch(self) -> Iterator[Batch]: ...


def steps_per_epoch(n_train: int, settings: FitSettings) -> int:
    """Batches in one epoch; a trailing batch of one sample is skipped (BatchNorm cannot train on it)."""
    full, remainder = divmod(n_train, settings.batch_size)
    steps = full + (1 if remainder > 1 else 0)
    if settings.max_batches_per_epoch is not None:
        steps = min(steps, settings.max_batches_per_epoch)
    return steps


class TensorBatches:
    """Batches by index slicing of an in-memory dataset's train split (seeded, optionally augmented)."""

    def __init__(self, dataset: Any, settings: FitSettings, generator: torch.Generator):
        self.dataset = dataset
        self.x, self.y = dataset.train.x, dataset.train.y
        self.batch_size = settings.batch_size
        self.augment = settings.augment
        self.generator = generator
        self.steps = steps_per_epoch(len(self.y), settings)
        if self.steps == 0:
            raise DataError(
                f"the train split has {len(self.y)} sample(s): too few to train on",
                hint="use a larger dataset or raise data.max_train",
            )

    def epoch(self) -> Iterator[Batch]:
        order = torch.randperm(len(self.y), generator=self.generator)
        for step in range(self.steps):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            x, y = self.x[index], self.y[index]
            if self.augment:
                x = self.dataset.augment(x, self.generator)
            yield x, y


class LoaderBatches:
    """Batches of a DataLoader (or any re-iterable of (inputs, labels)), taken anew every epoch."""

    def __init__(self, loader: Any, settings: FitSettings):
        if settings.augment:
            raise ConfigError(
                "augment=true applies to the in-memory Dataset; a DataLoader augments in its own transforms",
                path="augment",
                hint="leave augment false and add the augmentation to your Dataset / DataLoader",
            )
        if is_one_shot(loader) and settings.epochs > 1:
            raise ConfigError(
                f"{type(loader).__name__} is an iterator: it can be read once, not for {settings.epochs} epochs",
                hint="pass a DataLoader or a list of (inputs, labels) batches",
            )
        self.loader = batch_source(loader)
        self.max_batches = settings.max_batches_per_epoch
        length = len(self.loader) if hasattr(self.loader, "__len__") else None
        self.steps = length if self.max_batches is None or length is None else min(length, self.max_batches)

    def epoch(self) -> Iterator[Batch]:
        taken = 0
        for batch in self.loader:
            x, y = as_pair(batch)
            if y is None:
                raise DataError("the train loader yields inputs without labels", hint="yield (inputs, labels) batches")
            if len(y) < 2:
                continue
            yield x, y
            taken += 1
            if self.max_batches is not None and taken >= self.max_batches:
                break
        if taken == 0:
            raise DataError("the train loader yielded no batch of two or more samples", hint="check the DataLoader")


def train_batches(data: Any, settings: FitSettings, generator: torch.Generator) -> TrainBatches:
    """The batch source of ``data``: the fast path for an in-memory Dataset, else its loader."""
    if is_in_memory(data):
        return TensorBatches(data, settings, generator)
    return LoaderBatches(data, settings)


def validation_data(data: Any, val: Any) -> Any:
    """What the best epoch is chosen on: ``val`` when given, else an in-memory Dataset's own
    val split (None without one, or for a loader without ``val``)."""
    if val is not None:
        return val
    if is_in_memory(data) and len(data.val.y) > 0:
        return data.val
    return None
