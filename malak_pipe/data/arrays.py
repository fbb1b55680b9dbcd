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
from pathlib import Path

import numpy as np

from malak_pipe.data.checks import checked_samples
from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import ArraySplits, RawData, Reader, checked_splits, files_fingerprint, raw_from_splits
from malak_pipe.errors import DataError

SPLIT_KEYS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}
KEYS = (*(key for pair in SPLIT_KEYS.values() for key in pair), "class_names")


def locate_arrays(cfg: DataConfig) -> dict[str, Path]:
    """``{"npz": file}`` or ``{key: file.npy}``; DataError naming ``data.root`` when absent."""
    if not cfg.root:
        raise DataError("no array file is set", path="data.root", hint="point data.root at the .npz file")
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


def _splits(arrays: dict[str, np.ndarray], files: dict[str, Path], cfg: DataConfig) -> ArraySplits:
    """The checked splits of the arrays (see the module docstring)."""
    x, y = {}, {}
    for split, (x_key, y_key) in SPLIT_KEYS.items():
        if x_key not in arrays and y_key not in arrays:
            continue
        missing = y_key if x_key in arrays else x_key
        if missing not in arrays or (split == "train" and x_key not in arrays):
            raise DataError(f"'{missing}' is missing", path=_where(files, missing), hint=f"save {x_key} and {y_key}")
        x[split], y[split] = checked_samples(
            arrays[x_key], arrays[y_key], cfg.layout, _where(files, x_key), _where(files, y_key)
        )
    if "train" not in x:
        raise DataError("'x_train' is missing", path=_where(files, "x_train"), hint="save x_train and y_train")
    if len(x["train"]) == 0:
        raise DataError("x_train holds no samples", path=_where(files, "x_train"))
    where = ({s: _where(files, SPLIT_KEYS[s][0]) for s in x}, {s: _where(files, SPLIT_KEYS[s][1]) for s in y})
    return checked_splits(x, y, cfg, where, (arrays.get("class_names"), _where(files, "class_names")))


_checked: dict[tuple, ArraySplits] = {}


def load_arrays(cfg: DataConfig) -> ArraySplits:
    """The checked arrays of ``cfg`` (memoized on the files' content and the fields that read them)."""
    files = locate_arrays(cfg)
    key = (files_fingerprint("arrays", files), cfg.layout, cfg.class_names, cfg.num_classes)
    if key not in _checked:
        splits = _splits(_read_all(files), files, cfg)
        _checked.clear()  # arrays are big: keep the latest only
        _checked[key] = splits
    return _checked[key]


def read_arrays(cfg: DataConfig) -> RawData:
    """The arrays of ``data.root`` as raw splits."""
    return raw_from_splits(load_arrays(cfg), cfg)


def arrays_fingerprint(cfg: DataConfig) -> str:
    """sha256 over the files' contents, after checking them (see the module docstring)."""
    load_arrays(cfg)
    return files_fingerprint("arrays", locate_arrays(cfg))


ARRAYS = Reader(read=read_arrays, source_fingerprint=arrays_fingerprint)
