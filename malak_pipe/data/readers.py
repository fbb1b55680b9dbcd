"""The registry of dataset readers: name -> Reader (read raw arrays, fingerprint the source)."""

from __future__ import annotations

from malak_pipe.data.cifar10 import CIFAR10
from malak_pipe.data.config import DataConfig
from malak_pipe.data.digits import DIGITS
from malak_pipe.data.fashion_mnist import FASHION_MNIST
from malak_pipe.data.raw import Reader
from malak_pipe.data.synthetic import SYNTHETIC

READERS: dict[str, Reader] = {
    "digits": DIGITS,
    "fashion_mnist": FASHION_MNIST,
    "cifar10": CIFAR10,
    "synthetic": SYNTHETIC,
}


def source_fingerprint(cfg: DataConfig) -> str:
    """A cheap content hash of the dataset's source: its files, or its generating parameters.

    It changes when the data on disk changes; split parameters are not part of it (they are
    in the stage config, which the cache key already covers).
    """
    return READERS[cfg.name].source_fingerprint(cfg)
