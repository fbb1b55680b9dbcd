"""Writers of dataset files in their real on-disk formats, for the reader tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from malak_pipe.data import clear_memo


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_memo()
    yield
    clear_memo()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """An IDX file (magic 0x00000800 | ndim, big-endian dims, uint8 data)."""
    payload = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_fashion(folder: Path, n_train: int = 60, n_test: int = 20, seed: int = 0, compress: bool = True):
    """The four Fashion-MNIST IDX files with random 28x28 images and balanced labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, array in arrays.items():
        write_idx(folder / stem, array, compress=compress)
    return arrays


def write_cifar(folder: Path, per_batch: int = 10, n_test: int = 20, seed: int = 0) -> dict[str, dict]:
    """cifar-10-batches-py: five train batches, a test batch and batches.meta, pickled as the originals."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name, count in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.permutation(np.arange(count) % 10)],
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    names = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    meta = {b"label_names": [n.encode() for n in names], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches
