"""Dataset and Split: in-memory tensors, normalized, with batching and augmentation.

:func:`build_dataset` is the one place where raw arrays become splits: the validation split is
the source's own or drawn (stratified, ``split_seed``) from the train split, subsets are taken,
per-channel statistics are computed on the final train split and every split is normalized
with them. Samples are images (N x C x H x W) or 1-D signals (N x C x L).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from malak_pipe.data.augment import augment_batch
from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData
from malak_pipe.data.splits import stratified_pick, subset
from malak_pipe.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Samples ``x`` (float32 N x C x H x W, or N x C x L for signals; normalized) and labels ``y`` (int64 N)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


class Dataset:
    """A dataset held in memory: three splits plus what is needed to interpret them.

    Attributes: name, config (the DataConfig), class_names, num_classes, input_shape (C, H, W; or
    (C, L) for signals),
    mean / std (per channel, the normalization applied), fingerprint (sha256 of the raw arrays
    and the split parameters), train / val / test (Split), hflip and crop_padding (augmentation).
    """

    def __init__(
        self,
        *,
        config: DataConfig,
        class_names: tuple[str, ...],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: Split,
        val: Split,
        test: Split,
        fingerprint: str,
        hflip: bool,
        crop_padding: int,
    ):
        self.config = config
        self.name = config.name
        self.class_names = class_names
        self.mean, self.std = mean, std
        self.train, self.val, self.test = train, val, test
        self.fingerprint = fingerprint
        self.hflip = hflip
        self.crop_padding = crop_padding
        self._fill = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.train.x.shape[1:])

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {name: len(self.split(name)) for name in SPLITS}

    def split(self, name: str) -> Split:
        """The split called ``name`` (train, val or test)."""
        if name not in SPLITS:
            raise DataError(f"unknown split '{name}'", hint=f"use one of {list(SPLITS)}")
        return getattr(self, name)

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random crop with this dataset's padding (zero-valued pixels) and, where valid, flips.

        Signals (N x C x L) have no crop padding: they come back unchanged."""
        if x.dim() != 4:
            return x
        return augment_batch(x, padding=self.crop_padding, hflip=self.hflip, fill=self._fill, generator=generator)

    def iter_batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches (x, y) cut from the split's tensors (shuffled with ``generator`` when asked)."""
        part = self.split(split)
        order = torch.randperm(len(part), generator=generator) if shuffle else None
        for start in range(0, len(part), batch_size):
            if order is None:
                x, y = part.x[start : start + batch_size], part.y[start : start + batch_size]
            else:
                index = order[start : start + batch_size]
                x, y = part.x[index], part.y[index]
            yield (self.augment(x, generator) if augment else x), y

    def loader(
        self, split: str, batch_size: int, shuffle: bool = False, augment: bool = False, seed: int = 0
    ) -> DataLoader:
        """A DataLoader of (x, y) batches; each pass over it reshuffles (deterministically from ``seed``)."""
        return DataLoader(_BatchStream(self, split, batch_size, shuffle, augment, seed), batch_size=None)

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
        """Up to ``n_batches`` batches of ``batch_size`` random TRAIN images (never val or test)."""
        order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))
        order = order[: n_batches * batch_size]
        return [self.train.x[order[start : start + batch_size]] for start in range(0, len(order), batch_size)]

    def __repr__(self) -> str:
        return f"Dataset({self.name}, input_shape={self.input_shape}, sizes={self.sizes()})"


class _BatchStream(IterableDataset):
    """Iterable of ready-made batches; its generator persists so every epoch is a new order."""

    def __init__(self, dataset: Dataset, split: str, batch_size: int, shuffle: bool, augment: bool, seed: int):
        self.dataset, self.split, self.batch_size = dataset, split, batch_size
        self.shuffle, self.augment = shuffle, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.dataset.iter_batches(
            self.split, self.batch_size, shuffle=self.shuffle, augment=self.augment, generator=self.generator
        )

    def __len__(self) -> int:
        return -(-len(self.dataset.split(self.split)) // self.batch_size)


def _fingerprint(raw: RawData, cfg: DataConfig) -> str:
    digest = hashlib.sha256()
    own_val = () if raw.val_x is None else (raw.val_x, raw.val_y)
    for array in (raw.train_x, raw.train_y, raw.test_x, raw.test_y, *own_val):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    params = cfg.model_dump(
        include={"name", "val_fraction", "split_seed", "max_train", "max_val", "max_test", "normalize"}
    )
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()


def _images(x: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(scale)


def _channel_stats(images: torch.Tensor, normalize: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    channels = images.shape[1]
    if not normalize or len(images) == 0:
        return (0.0,) * channels, (1.0,) * channels
    std, mean = torch.std_mean(images, dim=(0, *range(2, images.dim())), correction=0)
    return tuple(float(m) for m in mean), tuple(float(s) if s > 0 else 1.0 for s in std)


def _to_split(images: torch.Tensor, y: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> Split:
    per_channel = (1, -1) + (1,) * (images.dim() - 2)
    images.sub_(torch.tensor(mean).view(per_channel)).div_(torch.tensor(std).view(per_channel))
    return Split(images, torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))


def _val_source(cfg: DataConfig, raw: RawData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(val samples, val labels, train index, val index): the source's own val split, or
    ``val_fraction`` of train drawn stratified with ``split_seed``."""
    if raw.val_x is not None and raw.val_y is not None:
        return raw.val_x, raw.val_y, np.arange(len(raw.train_y)), np.arange(len(raw.val_y))
    val_index, train_index = stratified_pick(raw.train_y, round(cfg.val_fraction * len(raw.train_y)), cfg.split_seed)
    return raw.train_x, raw.train_y, train_index, val_index


def build_dataset(cfg: DataConfig, raw: RawData) -> Dataset:
    """Split, subset and normalize ``raw`` as ``cfg`` says."""
    val_x, val_y, train_index, val_index = _val_source(cfg, raw)
    train_index = train_index[subset(raw.train_y[train_index], cfg.max_train, cfg.split_seed)]
    val_index = val_index[subset(val_y[val_index], cfg.max_val, cfg.split_seed)]
    test_index = subset(raw.test_y, cfg.max_test, cfg.split_seed)
    train_images = _images(raw.train_x[train_index], raw.scale)
    mean, std = _channel_stats(train_images, cfg.normalize)
    return Dataset(
        config=cfg,
        class_names=raw.class_names,
        mean=mean,
        std=std,
        train=_to_split(train_images, raw.train_y[train_index], mean, std),
        val=_to_split(_images(val_x[val_index], raw.scale), val_y[val_index], mean, std),
        test=_to_split(_images(raw.test_x[test_index], raw.scale), raw.test_y[test_index], mean, std),
        fingerprint=_fingerprint(raw, cfg),
        hflip=raw.hflip,
        crop_padding=raw.crop_padding,
    )
