"""load_dataset: a DataConfig to a Dataset, memoized in-process, with the declared shape checked."""

from __future__ import annotations

from collections import OrderedDict

from malak_pipe.data.config import DataConfig
from malak_pipe.data.dataset import Dataset, build_dataset
from malak_pipe.data.raw import RawData
from malak_pipe.data.readers import READERS, resolve, source_fingerprint
from malak_pipe.errors import DataError

MEMO_SIZE = 2  # datasets are big (CIFAR-10 is ~700 MB as float32): keep only the latest few
_memo: OrderedDict[tuple[str, str], Dataset] = OrderedDict()


def check_declared_shape(cfg: DataConfig, raw: RawData) -> None:
    """DataError when ``data.channels`` / ``data.image_size`` / ``data.num_classes`` disagree with the data.

    ``image_size`` is the side of square images, or the length of 1-D signals; images that
    are not square have no single size to declare (leave it null).
    """
    spatial = {int(d) for d in raw.train_x.shape[2:]}
    actual = {
        "channels": int(raw.train_x.shape[1]),
        "image_size": spatial.pop() if len(spatial) == 1 else None,
        "num_classes": len(raw.class_names),
    }
    for field, value in actual.items():
        declared = getattr(cfg, field)
        if declared is not None and declared != value:
            shown = value if value is not None else "x".join(str(d) for d in raw.train_x.shape[2:])
            raise DataError(
                f"data.{field} is {declared} but {cfg.name} has {field}={shown}",
                path=f"data.{field}",
                hint=f"set data.{field}: {value if value is not None else 'null'} (the model config interpolates it)",
            )


def load_dataset(cfg: DataConfig) -> Dataset:
    """The dataset described by ``cfg``; the same config (and unchanged source) gives the same object."""
    key = (cfg.model_dump_json(), source_fingerprint(cfg))
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]
    effective = resolve(cfg)
    raw = READERS[effective.name].read(effective)
    check_declared_shape(effective, raw)
    dataset = build_dataset(effective, raw)
    _memo[key] = dataset
    while len(_memo) > MEMO_SIZE:
        _memo.popitem(last=False)
    return dataset


def clear_memo() -> None:
    """Forget every memoized dataset (frees their memory)."""
    _memo.clear()
