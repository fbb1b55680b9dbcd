"""The registry of dataset readers: name -> Reader (read raw arrays, fingerprint the source)."""

from __future__ import annotations

from malak_pipe.data.arrays import ARRAYS
from malak_pipe.data.cifar10 import CIFAR10
from malak_pipe.data.config import DataConfig
from malak_pipe.data.digits import DIGITS
from malak_pipe.data.factory import FACTORY
from malak_pipe.data.fashion_mnist import FASHION_MNIST
from malak_pipe.data.image_folder import IMAGE_FOLDER
from malak_pipe.data.raw import Reader
from malak_pipe.data.synthetic import SYNTHETIC
from malak_pipe.errors import DataError

READERS: dict[str, Reader] = {
    "digits": DIGITS,
    "fashion_mnist": FASHION_MNIST,
    "cifar10": CIFAR10,
    "synthetic": SYNTHETIC,
    "image_folder": IMAGE_FOLDER,
    "arrays": ARRAYS,
    "factory": FACTORY,
}


def resolve(cfg: DataConfig) -> DataConfig:
    """``cfg``, or under ``missing="synthetic"`` a synthetic stand-in of the same shape when the
    dataset's files are absent (smoke runs of experiments whose data is not on this machine)."""
    if cfg.missing != "synthetic" or cfg.name == "synthetic":
        return cfg
    try:
        READERS[cfg.name].source_fingerprint(cfg)
        return cfg
    except DataError:
        return cfg.model_copy(
            update={
                "name": "synthetic",
                "root": None,
                "download": False,
                "factory": None,
                "kwargs": {},
                "channels": cfg.channels or 1,
                "image_size": cfg.image_size or 28,
                "num_classes": cfg.num_classes or 10,
                "n_train": cfg.max_train or cfg.n_train,
                "n_test": cfg.max_test or cfg.n_test,
                "seed": cfg.split_seed,
            }
        )


def source_fingerprint(cfg: DataConfig) -> str:
    """A cheap content hash of the dataset's source: its files, or its generating parameters.

    It changes when the data on disk changes; split parameters are not part of it (they are
    in the stage config, which the cache key already covers).
    """
    cfg = resolve(cfg)
    return READERS[cfg.name].source_fingerprint(cfg)
