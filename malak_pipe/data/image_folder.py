"""Images in class-per-folder trees (PNG, JPEG, BMP), read with Pillow.

Two layouts under ``data.root``::

    root/train/<class>/*.png   (+ optional root/val/<class>/..., root/test/<class>/...)
    root/<class>/*.png         (one tree: a fixed stratified test_fraction is held out)

The classes are the sorted folder names of the train tree (saved with the dataset as its
class names); a val or test tree may hold a subset of them. Images are converted to
``data.channels`` (1: grayscale, 3: RGB; None: grayscale when every image is, else RGB) and
resized to ``data.image_size`` squares (None: no resize, and every image must then have one
size). Before anything trains, the source fingerprint checks the folders: a missing root, an
empty class, a class only val/test know and, without a resize, mixed image sizes are errors
naming the folder or file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malak_pipe.data.config import DataConfig
from malak_pipe.data.raw import ArraySplits, RawData, Reader, file_digest, raw_from_splits
from malak_pipe.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
TREES = ("train", "val", "test")


@dataclass(frozen=True)
class ImageTree:
    """The image files of one split: ``files[class] = sorted paths`` (classes of the train tree)."""

    split: str
    folder: Path
    files: dict[str, list[Path]]

    def labelled(self, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
        """(file, class index) for every image, by class then path."""
        return [(path, classes.index(name)) for name in classes for path in self.files.get(name, [])]


@dataclass(frozen=True)
class FolderLayout:
    """The class names and the trees (train, and val / test when the folder has them)."""

    classes: tuple[str, ...]
    trees: dict[str, ImageTree]


def folder_root(cfg: DataConfig) -> Path:
    """``data.root`` as a directory; DataError naming it when unset, missing or a file."""
    if not cfg.root:
        raise DataError(
            "no image folder is set", path="data.root", hint="point data.root at the folder of class folders"
        )
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"the image folder {what}",
            path=str(root),
            hint="point data.root at a folder holding one sub-folder of images per class (or train/ and test/)",
        )
    return root


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    found = (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _tree(split: str, folder: Path, known: tuple[str, ...] | None) -> ImageTree:
    classes = _class_folders(folder)
    if not classes:
        raise DataError(
            "no class folders found",
            path=str(folder),
            hint="put the images of each class in a sub-folder named after the class (e.g. cat/, dog/)",
        )
    files: dict[str, list[Path]] = {}
    for class_dir in classes:
        if known is not None and class_dir.name not in known:
            raise DataError(
                f"class '{class_dir.name}' of the {split} tree has no folder in the train tree",
                path=str(class_dir),
                hint=f"the train classes are {list(known)}; rename or remove this folder",
            )
        images = _images_in(class_dir)
        if not images:
            raise DataError(
                f"class '{class_dir.name}' holds no image ({', '.join(IMAGE_SUFFIXES)})",
                path=str(class_dir),
                hint="add images to the folder or remove it",
            )
        files[class_dir.name] = images
    return ImageTree(split, folder, files)


def scan(cfg: DataConfig) -> FolderLayout:
    """The folder's classes and trees, checked (see the module docstring)."""
    root = folder_root(cfg)
    split_tree = (root / "train").is_dir()
    if not split_tree and any((root / name).is_dir() for name in ("val", "test")):
        raise DataError("the folder has val/ or test/ but no train/", path=str(root), hint="add root/train/<class>/")
    train = _tree("train", root / "train" if split_tree else root, None)
    classes = tuple(train.files)
    trees = {"train": train}
    for split in ("val", "test"):
        if split_tree and (root / split).is_dir():
            trees[split] = _tree(split, root / split, classes)
    return FolderLayout(classes, trees)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"cannot read the image ({exc})", path=str(path), hint="replace or remove the file") from None


def _check_one_size(layout: FolderLayout) -> None:
    """Without a resize every image must have the first image's size."""
    first: tuple[Path, tuple[int, int]] | None = None
    for tree in layout.trees.values():
        for path, _ in tree.labelled(layout.classes):
            with _open(path) as image:
                size = image.size
            if first is None:
                first = (path, size)
            elif size != first[1]:
                raise DataError(
                    f"the image is {size[0]}x{size[1]} but {first[0].name} is {first[1][0]}x{first[1][1]}, "
                    "and no resize is set",
                    path=str(path),
                    hint="set data.image_size=N to resize every image to N x N",
                )


_fingerprints: dict[tuple, str] = {}


def _listing(layout: FolderLayout) -> tuple[tuple, ...]:
    """(split, label, relative name, size, mtime) of every image: what the fingerprint is memoized on."""
    rows = []
    for split, tree in layout.trees.items():
        for path, label in tree.labelled(layout.classes):
            stat = path.stat()
            rows.append(
                (
                    split,
                    label,
                    path.relative_to(tree.folder).as_posix(),
                    str(path.resolve()),
                    stat.st_size,
                    stat.st_mtime_ns,
                )
            )
    return tuple(rows)


def image_folder_fingerprint(cfg: DataConfig) -> str:
    """sha256 over every image's split, class, relative path and content; checks the folder first.

    Memoized on the files' sizes and modification times, so the many loads of one run pay once.
    """
    layout = scan(cfg)
    key = (cfg.image_size is None, _listing(layout))
    if key not in _fingerprints:
        if cfg.image_size is None:
            _check_one_size(layout)
        digest = hashlib.sha256(b"image_folder")
        for split, label, name, path, _size, _mtime in key[1]:
            digest.update(f"\0{split}\0{label}\0{name}\0{file_digest(Path(path))}".encode())
        _fingerprints.clear()  # one folder at a time: the listing of a big folder is big
        _fingerprints[key] = digest.hexdigest()
    return _fingerprints[key]


def _mode(cfg: DataConfig, layout: FolderLayout) -> str:
    if cfg.channels not in (None, 1, 3):
        raise DataError(
            f"data.channels is {cfg.channels}; image folders are read as 1 (grayscale) or 3 (RGB) channels",
            path="data.channels",
            hint="set data.channels to 1, 3 or null (from the images)",
        )
    if cfg.channels is not None:
        return "L" if cfg.channels == 1 else "RGB"
    for tree in layout.trees.values():
        for path, _ in tree.labelled(layout.classes):
            with _open(path) as image:
                if image.mode not in GRAYSCALE_MODES:
                    return "RGB"
    return "L"


def _read_tree(tree: ImageTree, classes: tuple[str, ...], mode: str, size: int | None) -> tuple[np.ndarray, ...]:
    images, labels = [], []
    for path, label in tree.labelled(classes):
        with _open(path) as image:
            try:
                converted = image.convert(mode)
                if size is not None and converted.size != (size, size):
                    converted = converted.resize((size, size), resample=_bilinear())
                pixels = np.asarray(converted, dtype=np.uint8)
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot decode the image ({exc})", path=str(path)) from None
        images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
        labels.append(label)
        if images[-1].shape != images[0].shape:
            raise DataError(
                f"the image is {pixels.shape[1]}x{pixels.shape[0]}, unlike the first of its tree, and no resize is set",
                path=str(path),
                hint="set data.image_size=N to resize every image to N x N",
            )
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _bilinear() -> int:
    from PIL import Image

    return Image.Resampling.BILINEAR


def read_image_folder(cfg: DataConfig) -> RawData:
    """Every image of the folder as uint8 N x C x H x W, labels by class folder."""
    layout = scan(cfg)
    mode = _mode(cfg, layout)
    splits = {name: _read_tree(tree, layout.classes, mode, cfg.image_size) for name, tree in layout.trees.items()}
    data = ArraySplits(
        x={name: xy[0] for name, xy in splits.items()},
        y={name: xy[1] for name, xy in splits.items()},
        class_names=layout.classes,
        scale=255.0,
    )
    return raw_from_splits(data, cfg, crop_padding=max(1, data.x["train"].shape[2] // 8))


IMAGE_FOLDER = Reader(read=read_image_folder, source_fingerprint=image_folder_fingerprint)
