"""Samples and labels from NumPy files: one ``.npz``, or a folder of ``.npy`` files.

The arrays are ``x_train`` / ``y_train`` and, optionally, ``x_val`` / ``y_val`` and
``x_test`` / ``y_test`` (a missing test split is a fixed stratified ``test_fraction`` of
train), plus an optional ``class_names`` array of strings. Samples are uint8 (0..255) or
float, images N x C x H x W or N x H x W x C, or 1-D signals N x C x L (keyword spotting,
audio features, sensor data) or N x L x C (``data.layout``). Before anything trains, the
source fingerprint loads and checks them: missing keys, NaN or infinite values, labels
outside the classes and splits of different shapes are errors naming the file and array.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malak_pipe.data.checks import (
    channels_first,
    check_finite,
    check_label_range,
    check_same_shape,
    check_sample_dtype,
    hold_out_test,
    labels_of,
    resolve_layout,
)
from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData, Reader, files_fingerprint
from malak_pipe.errors import DataError

SPLIT_KEYS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}
KEYS = (*(key for pair in SPLIT_KEYS.values() for key in pair), "class_names")


def locate_arrays(cfg: DataConfig) -> dict[str, Path]:
    """``{"npz": file}`` or ``{key: file.npy}``; DataError naming ``data.root`` when absent."""
    if not cfg.root:
        raise DataError("data.root is not set", path="data.root", hint="point data.root at the .npz file")
    root = Path(cfg.root).expanduser()
    if root.is_file() and root.suffix == ".npz":
        return {"npz": root}
    if root.is_dir():
        found = {key: root / f"{key}.npy" for key in KEYS if (root / f"{key}.npy").is_file()}
        if "x_train" in found and "y_train" in found:
            return found
        raise DataError(
            "the folder holds no x_train.npy and y_train.npy",
            path=str(root),
            hint=f"save the arrays as {', '.join(k + '.npy' for k in KEYS)} (x_train, y_train required), or one .npz",
        )
    what = "is not a .npz file" if root.exists() else "does not exist"
    raise DataError(f"the array file {what}", path=str(root), hint="point data.root at a .npz file or a folder of .npy")


def _where(files: dict[str, Path], key: str) -> str:
    if "npz" in files:
        return f"{files['npz']}:{key}"
    return str(files.get(key, Path(next(iter(files.values()))).parent / f"{key}.npy"))


def _read_all(files: dict[str, Path]) -> dict[str, np.ndarray]:
    if "npz" not in files:
        return {key: _load(path, key) for key, path in files.items()}
    path = files["npz"]
    try:
        with np.load(path, allow_pickle=False) as archive:
            unknown = sorted(set(archive.files) - set(KEYS))
            if unknown:
                raise DataError(
                    f"unknown array(s) {unknown} in the file",
                    path=str(path),
                    hint=f"name the arrays {', '.join(KEYS)}",
                )
            return {key: _checked_array(archive[key], f"{path}:{key}") for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read the arrays ({exc})", path=str(path), hint="save them with numpy.savez") from None


def _load(path: Path, key: str) -> np.ndarray:
    try:
        return _checked_array(np.load(path, allow_pickle=False), str(path))
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read the array ({exc})", path=str(path), hint="save it with numpy.save") from None


def _checked_array(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype == object:
        raise DataError("object arrays are not read (they would need pickle)", path=where)
    return array


@dataclass(frozen=True)
class ArraySplits:
    """The checked arrays: channels-first samples and int64 labels per split, and the classes."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    scale: float


def _splits(arrays: dict[str, np.ndarray], files: dict[str, Path], cfg: DataConfig) -> dict[str, tuple]:
    """split -> (x channels-first, int64 labels), every array checked."""
    out: dict[str, tuple] = {}
    for split, (x_key, y_key) in SPLIT_KEYS.items():
        if x_key not in arrays and y_key not in arrays:
            continue
        missing = y_key if x_key in arrays else x_key
        if missing not in arrays or (split == "train" and x_key not in arrays):
            raise DataError(f"'{missing}' is missing", path=_where(files, missing), hint=f"save {x_key} and {y_key}")
        x, where = arrays[x_key], _where(files, x_key)
        check_sample_dtype(x, where)
        x = channels_first(x, resolve_layout(x.shape, cfg.layout, where))
        check_finite(x, where)
        if split == "train" and len(x) == 0:
            raise DataError("x_train holds no samples", path=where)
        out[split] = (x, labels_of(arrays[y_key], len(x), _where(files, y_key)))
    if "train" not in out:
        raise DataError("'x_train' is missing", path=_where(files, "x_train"), hint="save x_train and y_train")
    check_same_shape({s: xy[0] for s, xy in out.items()}, {s: _where(files, SPLIT_KEYS[s][0]) for s in out})
    return out


def class_list(
    cfg: DataConfig, stored: np.ndarray | None, stored_at: str, labels: list[np.ndarray]
) -> tuple[tuple[str, ...], str]:
    """(class names, where their count comes from): data.class_names, the ``stored`` list (found
    at ``stored_at``), data.num_classes or the largest label + 1; a count disagreeing with
    data.num_classes is an error."""
    if cfg.class_names is not None:
        names, source = tuple(cfg.class_names), "data.class_names"
    elif stored is not None:
        names, source = tuple(str(n) for n in np.asarray(stored).reshape(-1)), stored_at
    else:
        count = cfg.num_classes or (max(int(y.max()) for y in labels if len(y)) + 1)
        names, source = tuple(str(i) for i in range(count)), "data.num_classes" if cfg.num_classes else "the labels"
    if cfg.num_classes is not None and cfg.num_classes != len(names):
        raise DataError(
            f"data.num_classes is {cfg.num_classes} but {source} names {len(names)} classes",
            path="data.num_classes",
            hint=f"set data.num_classes={len(names)}",
        )
    return names, source


_checked: dict[tuple, ArraySplits] = {}


def load_arrays(cfg: DataConfig) -> ArraySplits:
    """The checked arrays of ``cfg`` (memoized on the files' content and the fields that read them)."""
    files = locate_arrays(cfg)
    key = (files_fingerprint("arrays", files), cfg.layout, cfg.class_names, cfg.num_classes)
    if key not in _checked:
        arrays = _read_all(files)
        splits = _splits(arrays, files, cfg)
        labels = [y for _, y in splits.values()]
        names, source = class_list(cfg, arrays.get("class_names"), _where(files, "class_names"), labels)
        for split, (_, y) in splits.items():
            check_label_range(y, len(names), _where(files, SPLIT_KEYS[split][1]), source)
        _checked.clear()  # arrays are big: keep the latest only
        _checked[key] = ArraySplits(
            x={s: xy[0] for s, xy in splits.items()},
            y={s: xy[1] for s, xy in splits.items()},
            class_names=names,
            scale=check_sample_dtype(splits["train"][0], "x_train"),
        )
    return _checked[key]


def raw_from_splits(data: ArraySplits, cfg: DataConfig) -> RawData:
    """RawData of checked splits; the test split is held out of train when there is none."""
    train_x, train_y = data.x["train"], data.y["train"]
    if "test" in data.x:
        test_x, test_y = data.x["test"], data.y["test"]
    else:
        train_x, train_y, test_x, test_y = hold_out_test(train_x, train_y, cfg.test_fraction)
    return RawData(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        class_names=data.class_names,
        scale=data.scale,
        hflip=False,
        crop_padding=0,
        val_x=data.x.get("val"),
        val_y=data.y.get("val"),
    )


def read_arrays(cfg: DataConfig) -> RawData:
    """The arrays of ``data.root`` as raw splits."""
    return raw_from_splits(load_arrays(cfg), cfg)


def arrays_fingerprint(cfg: DataConfig) -> str:
    """sha256 over the files' contents, after checking them (see the module docstring)."""
    load_arrays(cfg)
    return files_fingerprint("arrays", locate_arrays(cfg))


ARRAYS = Reader(read=read_arrays, source_fingerprint=arrays_fingerprint)
