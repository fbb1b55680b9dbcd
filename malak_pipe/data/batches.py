"""Batches from whatever data a user holds: a DataLoader, any iterable of (inputs, labels)
batches, a torch Dataset of (input, label) samples, or bare input tensors / arrays.

Every technique of the library accepts these as well as the in-memory
:class:`~malak_pipe.data.dataset.Dataset` (the fast path, recognised by
:func:`is_in_memory`)::

    from malak_pipe.data.batches import batches, inputs, collect
    for x, y in batches(train_loader): ...          # y is None for input-only data
    calibration = inputs(train_loader, max_batches=8)
    x, y = collect(test_loader)                     # everything, concatenated
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from malak_pipe.errors import DataError

SAMPLE_BATCH = 256
"""Batch size used to batch a torch Dataset or a bare tensor handed in without a loader."""


def is_in_memory(data: Any) -> bool:
    """Whether ``data`` is the library's in-memory Dataset (or looks like one: ``train.x``)."""
    return hasattr(data, "train") and hasattr(data.train, "x")


def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return torch.as_tensor(value)


def as_pair(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One batch as (inputs, labels or None): a tensor/array, or a sequence whose first two items
    are inputs and labels (what a DataLoader over (x, y) samples yields)."""
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return _tensor(batch), None
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return _tensor(batch[0]), _tensor(batch[1])
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return _tensor(batch[0]), None
    raise DataError(
        f"a batch must be an inputs tensor or an (inputs, labels) pair, got {type(batch).__name__}",
        hint="pass a DataLoader over (input, label) samples, or a list of (x, y) tensor pairs",
    )


def batch_source(data: Any) -> Iterable[Any]:
    """``data`` as something to iterate for batches (a torch Dataset gets a DataLoader)."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        tensor = _tensor(data)
        return [tensor[start : start + SAMPLE_BATCH] for start in range(0, len(tensor), SAMPLE_BATCH)]
    if isinstance(data, TorchDataset) and not isinstance(data, DataLoader):
        return DataLoader(data, batch_size=SAMPLE_BATCH, shuffle=False)
    if is_in_memory(data):
        raise DataError(
            "an in-memory Dataset holds three splits: pass one of them (dataset.loader('train', 64)) or the "
            "Dataset to a technique that takes it",
        )
    if not isinstance(data, Iterable):
        raise DataError(
            f"cannot take batches from a {type(data).__name__}",
            hint="pass a torch DataLoader, an iterable of (inputs, labels) batches, or a tensor of inputs",
        )
    return data


def is_one_shot(data: Any) -> bool:
    """Whether iterating ``data`` consumes it (a generator or iterator: no second epoch)."""
    return isinstance(data, Iterator)


def batches(data: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(inputs, labels or None) for every batch of ``data``."""
    for batch in batch_source(data):
        yield as_pair(batch)


def inputs(data: Any, max_batches: int | None = None) -> list[torch.Tensor]:
    """The input tensors of the first ``max_batches`` batches (all when None)."""
    found = [x for x, _ in itertools.islice(batches(data), max_batches)]
    if not found:
        raise DataError("the data yielded no batch", hint="pass a non-empty DataLoader or tensor")
    return found


def sample_inputs(data: Any, count: int) -> torch.Tensor:
    """The first ``count`` inputs (fewer when the data holds fewer), as one tensor."""
    taken: list[torch.Tensor] = []
    have = 0
    for x, _ in batches(data):
        taken.append(x[: count - have])
        have += len(taken[-1])
        if have >= count:
            break
    if not taken:
        raise DataError("the data yielded no batch", hint="pass a non-empty DataLoader or tensor")
    return torch.cat(taken)


def collect(data: Any, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every input (up to ``limit``) and its label concatenated; labels None when the data has none."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    have = 0
    for x, y in batches(data):
        keep = len(x) if limit is None else min(len(x), limit - have)
        xs.append(x[:keep])
        if y is not None:
            ys.append(y[:keep])
        have += keep
        if limit is not None and have >= limit:
            break
    if not xs:
        raise DataError("the data yielded no batch", hint="pass a non-empty DataLoader or tensor")
    if ys and len(ys) != len(xs):
        raise DataError("some batches have labels and some do not")
    return torch.cat(xs), (torch.cat(ys) if ys else None)


def sample_shape(data: Any) -> tuple[int, ...]:
    """The shape of one input (without the batch axis): an in-memory Dataset's ``input_shape``,
    or that of the first batch's inputs."""
    if hasattr(data, "input_shape"):
        return tuple(int(d) for d in data.input_shape)
    x, _ = next(batches(data), (None, None))
    if x is None:
        raise DataError("the data yielded no batch", hint="pass a non-empty DataLoader or tensor")
    return tuple(int(d) for d in x.shape[1:])
