"""Synthetic class-conditional images: a fixed random blocky pattern per class plus noise.

Each class has a random pattern of 2x2-pixel blocks (a smooth pattern that convolutions pick
up quickly); samples add Gaussian noise and are quantized to uint8 like real images. With
``layout: ncl`` the samples are 1-D signals (N x C x L, ``image_size`` the length) of 2-sample
blocks instead.

Deterministic in (seed, shapes, sizes) and learnable by any of the models, for tests and
smoke runs that must not depend on downloaded data.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData, Reader

GENERATOR_VERSION = 1
DEFAULT_CHANNELS = 1
DEFAULT_IMAGE_SIZE = 8
DEFAULT_NUM_CLASSES = 4
NOISE_STD = 0.35


def _shape(cfg: DataConfig) -> tuple[int, int, int]:
    return (
        cfg.num_classes or DEFAULT_NUM_CLASSES,
        cfg.channels or DEFAULT_CHANNELS,
        cfg.image_size or DEFAULT_IMAGE_SIZE,
    )


def _signals(cfg: DataConfig) -> bool:
    return cfg.layout == "ncl"


def _prototypes(rng: np.random.Generator, num_classes: int, channels: int, size: int, signals: bool) -> np.ndarray:
    blocks = max(1, size // 2)
    repeat = -(-size // blocks)
    if signals:
        coarse = rng.uniform(0.0, 1.0, size=(num_classes, channels, blocks))
        return np.kron(coarse, np.ones((1, 1, repeat)))[:, :, :size]
    coarse = rng.uniform(0.0, 1.0, size=(num_classes, channels, blocks, blocks))
    return np.kron(coarse, np.ones((1, 1, repeat, repeat)))[:, :, :size, :size]


def _samples(rng: np.random.Generator, prototypes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    num_classes = len(prototypes)
    labels = rng.permutation(np.arange(count) % num_classes).astype(np.int64)
    noisy = prototypes[labels] + rng.normal(0.0, NOISE_STD, size=(count, *prototypes.shape[1:]))
    return np.clip(np.rint(noisy * 255.0), 0, 255).astype(np.uint8), labels


def read_synthetic(cfg: DataConfig) -> RawData:
    """``n_train`` and ``n_test`` balanced samples of ``num_classes`` patterns (channels x size x
    size, or channels x size for ``layout: ncl``)."""
    num_classes, channels, size = _shape(cfg)
    rng = np.random.default_rng(cfg.seed)
    prototypes = _prototypes(rng, num_classes, channels, size, _signals(cfg))
    train_x, train_y = _samples(rng, prototypes, cfg.n_train)
    test_x, test_y = _samples(rng, prototypes, cfg.n_test)
    return RawData(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        class_names=tuple(f"class_{index}" for index in range(num_classes)),
        scale=255.0,
        hflip=False,
        crop_padding=max(1, size // 8),
    )


def synthetic_fingerprint(cfg: DataConfig) -> str:
    """Hash of the generating parameters (the data is a pure function of them)."""
    num_classes, channels, size = _shape(cfg)
    params = {
        "version": GENERATOR_VERSION,
        "numpy": np.__version__.split(".")[0],
        "num_classes": num_classes,
        "channels": channels,
        "image_size": size,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "seed": cfg.seed,
    }
    if _signals(cfg):
        params["layout"] = cfg.layout
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


SYNTHETIC = Reader(read=read_synthetic, source_fingerprint=synthetic_fingerprint)
