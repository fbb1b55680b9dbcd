"""Reading a batch of images for a drift check: .npy, .npz or IDX (plain or .gz), in raw pixel units."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from malak_pipe.errors import DataError

NPZ_KEYS = ("x", "inputs", "images", "x_test", "arr_0")


def read_array(path: Path | str) -> np.ndarray:
    """The image array stored in ``path``; :class:`DataError` naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such input file", path=str(path), hint="check the --inputs path")
    name = path.name.lower()
    if name.endswith(".npy"):
        return _read_npy(path)
    if name.endswith(".npz"):
        return _read_npz(path)
    if name.endswith((".gz", ".idx", "-ubyte")) or "idx" in name:
        from malak_pipe.data.idx import read_idx

        return np.array(read_idx(path))
    raise DataError(
        "unknown input format", path=str(path), hint="give a .npy, .npz or IDX file (e.g. t10k-images-idx3-ubyte.gz)"
    )


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a readable .npy file ({exc})", path=str(path)) from None


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            key = next((k for k in NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise DataError(
                    f"the .npz holds {names}; which one are the images?",
                    path=str(path),
                    hint=f"name the image array one of {list(NPZ_KEYS)}",
                )
            return archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"not a readable .npz file ({exc})", path=str(path)) from None


def to_nchw(array: np.ndarray, input_shape: tuple[int, int, int], path: str | None = None) -> np.ndarray:
    """``array`` as N x C x H x W for ``input_shape`` (accepts N x H x W for one channel and N x H x W x C)."""
    channels, height, width = input_shape
    if array.ndim == 3 and channels == 1 and array.shape[1:] == (height, width):
        return array[:, None]
    if array.ndim == 4 and array.shape[1:] == (channels, height, width):
        return array
    if array.ndim == 4 and array.shape[1:] == (height, width, channels):
        return np.transpose(array, (0, 3, 1, 2))
    if array.ndim == 2 and array.shape[1] == channels * height * width:
        return array.reshape(-1, channels, height, width)
    raise DataError(
        f"inputs of shape {tuple(array.shape)} do not fit the model's images {input_shape} (C, H, W)",
        path=path,
        hint=f"give N x {channels} x {height} x {width} (or N x {height} x {width} x {channels}) images",
    )


def prepare_inputs(
    array: np.ndarray,
    input_shape: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    scale: float | None = None,
    normalized: bool = False,
    path: str | None = None,
) -> np.ndarray:
    """Raw images -> normalized float32 N x C x H x W.

    Raw pixels are divided by ``scale`` (default 255 for integer arrays, 1 for floats, which are
    taken to be in [0, 1]) and normalized with the dataset's ``mean`` / ``std``. With
    ``normalized`` the array is used as it is.
    """
    if array.dtype.kind not in "uif" or array.size == 0:
        raise DataError(f"inputs must be a non-empty numeric array, got dtype {array.dtype}", path=path)
    x = to_nchw(array, input_shape, path).astype(np.float32)
    if normalized:
        return x
    divisor = scale if scale is not None else (255.0 if array.dtype.kind in "ui" else 1.0)
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return (x / np.float32(divisor) - mean_a) / std_a
