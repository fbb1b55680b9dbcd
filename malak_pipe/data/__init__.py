"""Datasets held in memory as tensors: digits, fashion_mnist, cifar10, synthetic, and the
user's own data: ``image_folder`` (class-per-folder PNG/JPEG/BMP trees), ``arrays`` (.npz or
.npy files: images or 1-D signals) and ``factory`` (an import string returning torch Datasets).

``DataConfig`` and ``source_fingerprint`` import no torch; the rest is imported on first use::

    from malak_pipe.data import DataConfig, load_dataset
    ds = load_dataset(DataConfig(name="digits"))
    ds.train.x.shape, ds.val, ds.test, ds.calibration_batches(4, 32)
    ds = load_dataset(DataConfig(name="image_folder", root="photos", image_size=32))

:mod:`malak_pipe.data.batches` reads batches from DataLoaders and other iterables, which every
technique of the library accepts in place of a Dataset.
"""

from __future__ import annotations

import importlib
from typing import Any

from malak_pipe.data.config import DATASET_NAMES, DataConfig

_LAZY: dict[str, str] = {
    "Dataset": "malak_pipe.data.dataset",
    "Split": "malak_pipe.data.dataset",
    "build_dataset": "malak_pipe.data.dataset",
    "load_dataset": "malak_pipe.data.load",
    "clear_memo": "malak_pipe.data.load",
    "source_fingerprint": "malak_pipe.data.readers",
    "READERS": "malak_pipe.data.readers",
    "DATASET": "malak_pipe.data.artifact",
    "augment_batch": "malak_pipe.data.augment",
    "stratified_pick": "malak_pipe.data.splits",
}

__all__ = ["DATASET_NAMES", "DataConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'malak_pipe.data' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
