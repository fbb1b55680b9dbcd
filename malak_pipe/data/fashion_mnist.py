"""Fashion-MNIST from its IDX files (torchvision's layout or Debian's dataset-fashion-mnist)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from malak_pipe.data.config import DataConfig
from malak_pipe.data.idx import read_idx
from malak_pipe.data.raw import RawData, Reader, as_labels, data_root, files_fingerprint, locate_files, not_found
from malak_pipe.errors import DataError

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def search_places(cfg: DataConfig) -> list[Path]:
    """Where the files are looked for, in order."""
    root = data_root(cfg)
    return [root, root / "FashionMNIST" / "raw", SYSTEM_DIR]


def locate(cfg: DataConfig) -> dict[str, Path]:
    """``key -> path`` of the four files in the first place holding all of them."""
    places = search_places(cfg)
    stems = list(FILES.values())
    found = locate_files(cfg, places, stems, (".gz", ""), download=("FashionMNIST", places[1]))
    if found is None:
        raise not_found(
            "Fashion-MNIST",
            ", ".join(f"{stem}(.gz)" for stem in stems),
            places,
            hint="apt-get install dataset-fashion-mnist (installs into /usr/share/datasets/fashion-mnist), "
            "or set data.download=true with torchvision installed (downloads into <root>/FashionMNIST/raw), "
            "or copy the four files into data.root",
        )
    return {key: found[stem] for key, stem in FILES.items()}


def _images(path: Path) -> np.ndarray:
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"expected uint8 images N x H x W, got {images.dtype} {list(images.shape)}", path=str(path))
    return images[:, None, :, :]


def _pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _images(images_path)
    labels = as_labels(read_idx(labels_path), len(CLASS_NAMES), labels_path)
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels in {labels_path.name}", path=str(images_path))
    return images, labels


def read_fashion_mnist(cfg: DataConfig) -> RawData:
    """The 60,000 train and 10,000 test images (28x28 grayscale, 10 classes)."""
    files = locate(cfg)
    train_x, train_y = _pair(files["train_images"], files["train_labels"])
    test_x, test_y = _pair(files["test_images"], files["test_labels"])
    return RawData(train_x, train_y, test_x, test_y, CLASS_NAMES, scale=255.0, hflip=True, crop_padding=2)


def fashion_mnist_fingerprint(cfg: DataConfig) -> str:
    """sha256 over the four files' contents."""
    return files_fingerprint("fashion_mnist", locate(cfg))


FASHION_MNIST = Reader(read=read_fashion_mnist, source_fingerprint=fashion_mnist_fingerprint)
