"""scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): needs no download."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

import numpy as np

from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData, Reader
from malak_pipe.data.splits import stratified_pick

TEST_FRACTION = 0.2
TEST_SEED = 0  # fixed, not split_seed: the test split must not move between runs


def read_digits(_cfg: DataConfig) -> RawData:
    """Digits with a fixed stratified 20% test split (the dataset has no official one)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    test, train = stratified_pick(labels, round(TEST_FRACTION * len(labels)), TEST_SEED)
    return RawData(
        train_x=images[train],
        train_y=labels[train],
        test_x=images[test],
        test_y=labels[test],
        class_names=tuple(str(digit) for digit in range(10)),
        scale=16.0,
        hflip=False,
        crop_padding=1,
    )


def digits_fingerprint(_cfg: DataConfig) -> str:
    """The data ships with scikit-learn, so its version identifies it."""
    return hashlib.sha256(f"digits\0scikit-learn=={version('scikit-learn')}".encode()).hexdigest()


DIGITS = Reader(read=read_digits, source_fingerprint=digits_fingerprint)
