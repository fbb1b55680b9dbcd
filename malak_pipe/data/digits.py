"""scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): needs no download."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

import numpy as np

from malak_pipe.data.checks import hold_out_test
from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import RawData, Reader

TEST_FRACTION = 0.2


def read_digits(_cfg: DataConfig) -> RawData:
    """Digits with a fixed stratified 20% test split (the dataset has no official one)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_x, train_y, test_x, test_y = hold_out_test(images, labels, TEST_FRACTION)
    return RawData(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        class_names=tuple(str(digit) for digit in range(10)),
        scale=16.0,
        hflip=False,
        crop_padding=1,
    )


def digits_fingerprint(_cfg: DataConfig) -> str:
    """The data ships with scikit-learn, so its version identifies it."""
    return hashlib.sha256(f"digits\0scikit-learn=={version('scikit-learn')}".encode()).hexdigest()


DIGITS = Reader(read=read_digits, source_fingerprint=digits_fingerprint)
