"""Data from user code: ``data.factory`` names a callable returning torch Datasets.

    data.name=factory data.factory=my_pkg.data:make_datasets data.kwargs={root: /data/kws}

The callable (called with ``data.kwargs``) returns ``(train, val, test)`` (val and test may be
None, or left out), a dict with those keys, or one Dataset (train only). Each yields
``(input, label)`` samples; they are read once into memory, checked like array files (finite
values, labels in range, one sample shape) and split like every dataset (a missing test set
is a fixed stratified ``test_fraction`` of train). The class names are ``data.class_names``,
the train set's ``classes`` attribute (torchvision's datasets have one), or the label values.

The callable's module enters the data node's cache key (``DataConfig.code_modules``), and the
source fingerprint hashes the samples themselves, so changed code or changed data re-runs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.data.checks import checked_samples
from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import ArraySplits, RawData, Reader, checked_splits, raw_from_splits
from malak_pipe.errors import ConfigError, DataError, MalakError

SPLITS = ("train", "val", "test")


def call_factory(cfg: DataConfig) -> Any:
    """What ``data.factory(**data.kwargs)`` returns; ConfigError naming the config path on failure."""
    from malak_pipe.models.factory import call_factory as call

    if not cfg.factory:
        raise ConfigError(
            "data.name=factory needs data.factory",
            path="data.factory",
            hint="set it to an import string 'pkg.module:callable' returning (train, val, test) torch Datasets",
        )
    return call(cfg.factory, cfg.kwargs, path="data.factory", kwargs_path="data.kwargs")


def datasets_of(returned: Any, factory: str) -> dict[str, Any]:
    """split -> Dataset of what the factory returned (None entries dropped); train required."""
    if isinstance(returned, dict):
        unknown = sorted(set(returned) - set(SPLITS))
        if unknown:
            raise ConfigError(
                f"{factory} returned unknown split(s) {unknown}", path="data.factory", hint="use train, val, test"
            )
        found = dict(returned)
    elif isinstance(returned, (tuple, list)):
        if not 1 <= len(returned) <= 3:
            raise ConfigError(
                f"{factory} returned {len(returned)} items", path="data.factory", hint="return (train, val, test)"
            )
        found = dict(zip(SPLITS, returned, strict=False))
    else:
        found = {"train": returned}
    found = {split: ds for split, ds in found.items() if ds is not None}
    if "train" not in found:
        raise ConfigError(f"{factory} returned no train set", path="data.factory", hint="return (train, val, test)")
    return found


def _samples(dataset: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    from malak_pipe.data.batches import collect

    try:
        x, y = collect(dataset)
    except MalakError:
        raise
    except Exception as exc:  # a user's Dataset can fail in any way while being read
        raise DataError(f"reading the samples failed ({type(exc).__name__}: {str(exc)[:300]})", path=where) from None
    if y is None:
        raise DataError("the samples carry no labels", path=where, hint="each sample must be an (input, label) pair")
    return x.numpy(), y.numpy()


def _module_stamp(factory: str) -> tuple:
    """The factory module file's size and time: an in-process memo must notice an edited module."""
    try:
        spec = importlib.util.find_spec(factory.partition(":")[0])
    except (ImportError, ValueError):
        return ()
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return ()
    stat = Path(spec.origin).stat()
    return (spec.origin, stat.st_size, stat.st_mtime_ns)


_read: dict[tuple, ArraySplits] = {}


def load_factory(cfg: DataConfig) -> ArraySplits:
    """The factory's samples, checked (memoized on the factory, its kwargs and module file)."""
    key = (cfg.factory, json.dumps(cfg.kwargs, sort_keys=True, default=str), _module_stamp(cfg.factory or ""))
    key += (cfg.layout, cfg.class_names, cfg.num_classes)
    if key not in _read:
        sets = datasets_of(call_factory(cfg), cfg.factory or "")
        where = {split: f"data.factory ({cfg.factory}) {split} set" for split in sets}
        x, y = {}, {}
        for split, dataset in sets.items():
            x[split], y[split] = checked_samples(
                *_samples(dataset, where[split]), cfg.layout, where[split], where[split]
            )
        stored = getattr(sets["train"], "classes", None)
        stored = None if stored is None else np.asarray(stored)
        _read.clear()
        _read[key] = checked_splits(x, y, cfg, (where, where), (stored, f"the classes of the {where['train']}"))
    return _read[key]


def read_factory(cfg: DataConfig) -> RawData:
    """The factory's datasets as raw splits."""
    return raw_from_splits(load_factory(cfg), cfg)


def factory_fingerprint(cfg: DataConfig) -> str:
    """sha256 over the samples, labels and class names the factory returns."""
    data = load_factory(cfg)
    digest = hashlib.sha256(b"factory")
    for split in sorted(data.x):
        for array in (data.x[split], data.y[split]):
            digest.update(f"\0{split}{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).data)
    digest.update(json.dumps(list(data.class_names)).encode())
    return digest.hexdigest()


FACTORY = Reader(read=read_factory, source_fingerprint=factory_fingerprint)
