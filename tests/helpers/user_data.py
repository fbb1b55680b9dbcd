"""Writers of a user's own data in its real formats (PNG trees, .npz files, factory modules)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def class_pattern(label: int, channels: int, size: int) -> np.ndarray:
    """A smooth per-class uint8 image (channels x size x size) that a small CNN tells apart."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    base = np.stack(
        [np.sin((label + 1) * (rows + c) / size * 3.0) + np.cos((cols * (c + 1)) / size * 2.0) for c in range(channels)]
    )
    return np.clip((base + 2.0) * 63.0, 0, 255).astype(np.uint8)


def write_image_tree(
    folder: Path,
    classes: tuple[str, ...] = ("cat", "dog", "owl"),
    per_class: int = 8,
    *,
    size: int | tuple[int, int] = 12,
    channels: int = 1,
    suffix: str = ".png",
    seed: int = 0,
) -> Path:
    """``folder/<class>/<i><suffix>``: noisy class patterns, grayscale (1) or RGB (3)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    height, width = (size, size) if isinstance(size, int) else size
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = class_pattern(label, channels, max(height, width))[:, :height, :width].astype(np.int16)
            image = np.clip(image + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
            pixels = image[0] if channels == 1 else image.transpose(1, 2, 0)
            Image.fromarray(pixels).save(folder / name / f"{index:03d}{suffix}")
    return folder


def write_fashion_folder(root: Path, per_class_train: int, per_class_test: int) -> Path:
    """Real Fashion-MNIST images as PNGs: root/train/<class>/*.png and root/test/<class>/*.png."""
    from PIL import Image

    from malak_pipe.data.idx import read_idx

    def idx(stem: str) -> np.ndarray:
        return read_idx(next(p for p in FASHION_MNIST_DIR.iterdir() if p.name.startswith(stem)))

    for split, stem, count in (("train", "train", per_class_train), ("test", "t10k", per_class_test)):
        images, labels = idx(f"{stem}-images"), idx(f"{stem}-labels")
        for label, name in enumerate(FASHION_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in np.flatnonzero(labels == label)[:count]:
                Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
    return root


def signals(count: int, channels: int = 3, length: int = 32, classes: int = 4, seed: int = 0):
    """1-D sensor-like signals N x C x L (a class-dependent frequency plus noise) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(count) % classes)
    t = np.arange(length) / length
    x = np.stack([np.sin(2 * np.pi * (y[:, None] + 1) * t + c) for c in range(channels)], axis=1)
    return (x + 0.3 * rng.standard_normal(x.shape)).astype(np.float32), y.astype(np.int64)


def write_factory_module(folder: Path, name: str, body: str) -> str:
    """A module ``name`` in ``folder`` (put on sys.path) with ``body``; returns its import name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    sys.modules.pop(name, None)
    return name
