"""CIFAR-10 from its python pickle batches (``cifar-10-batches-py``, torchvision's layout).

The batches are unpickled with a restricted unpickler that only rebuilds numpy arrays, so a
tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData, Reader, as_labels, data_root, files_fingerprint, locate_files, not_found
from malak_pipe.errors import DataError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    import codecs

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    allowed[("_codecs", "encode")] = codecs.encode
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        target = self.allowed.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return target


def read_batch(path: Path) -> dict[bytes, Any]:
    """One pickled batch as the dict it holds (bytes keys)."""
    try:
        with open(path, "rb") as handle:
            batch = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"not a CIFAR-10 pickle batch ({type(exc).__name__}: {exc})",
            path=str(path),
            hint=f"the file is damaged; extract {TARBALL_URL} again",
        ) from None
    if not isinstance(batch, dict):
        raise DataError("not a CIFAR-10 batch (expected a pickled dict)", path=str(path))
    return batch


def _images_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels is None:
        raise DataError("a CIFAR-10 batch needs b'data' (uint8 N x 3072) and b'labels'", path=str(path))
    labels = as_labels(np.asarray(labels), len(CLASS_NAMES), path)
    if len(labels) != len(data):
        raise DataError(f"{len(data)} images but {len(labels)} labels", path=str(path))
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32), labels


def search_places(cfg: DataConfig) -> list[Path]:
    """Where the batches are looked for, in order."""
    root = data_root(cfg)
    return [root / FOLDER, root]


def locate(cfg: DataConfig) -> dict[str, Path]:
    """``batch name -> path`` of the six batches and the meta file."""
    stems = [*TRAIN_BATCHES, TEST_BATCH, META]
    places = search_places(cfg)
    found = locate_files(cfg, places, stems, ("",), download=("CIFAR10", places[0]))
    if found is None:
        raise not_found(
            "CIFAR-10",
            ", ".join(stems),
            places,
            hint=f"set data.download=true with torchvision installed, or download {TARBALL_URL} and "
            f"extract it into data.root (it creates {FOLDER}/)",
        )
    return found


def _class_names(path: Path) -> tuple[str, ...]:
    names = read_batch(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        return CLASS_NAMES
    return tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)


def read_cifar10(cfg: DataConfig) -> RawData:
    """The 50,000 train and 10,000 test images (32x32 RGB, 10 classes)."""
    files = locate(cfg)
    train = [_images_labels(files[name]) for name in TRAIN_BATCHES]
    test_x, test_y = _images_labels(files[TEST_BATCH])
    return RawData(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
        class_names=_class_names(files[META]),
        scale=255.0,
        hflip=True,
        crop_padding=4,
    )


def cifar10_fingerprint(cfg: DataConfig) -> str:
    """sha256 over the batches' contents."""
    return files_fingerprint("cifar10", locate(cfg))


CIFAR10 = Reader(read=read_cifar10, source_fingerprint=cifar10_fingerprint)
