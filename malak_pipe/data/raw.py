"""What a reader returns, and the helpers readers share: file lookup, file hashing, downloads.

Readers return raw arrays (uint8 images N x C x H x W, int64 labels); one place
(:mod:`malak_pipe.data.dataset`) splits, subsets, normalizes and makes tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malak_pipe.data.checks import check_label_range, check_same_shape, check_sample_dtype, class_list, hold_out_test
from malak_pipe.data.config import DataConfig
from malak_pipe.errors import DataError

DEFAULT_ROOT = Path("data")


@dataclass(frozen=True)
class RawData:
    """Samples as stored (``scale`` is the value of a white pixel) and their labels.

    Samples are images N x C x H x W or 1-D signals N x C x L. ``hflip`` says whether a
    horizontally flipped image is still a valid sample of its class; ``crop_padding`` is the
    padding of the random-crop augmentation (0: none). ``val_x``/``val_y`` are the source's
    own validation split, when it has one (else it is drawn from the train split).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    scale: float
    hflip: bool
    crop_padding: int
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None


@dataclass(frozen=True)
class ArraySplits:
    """A user source's checked arrays: channels-first samples and int64 labels per split
    ("train", and "val" / "test" when the source has them), the classes, the white value."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    scale: float


def checked_splits(
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    cfg: DataConfig,
    where: tuple[dict[str, str], dict[str, str]],
    stored_classes: tuple[np.ndarray | None, str] = (None, ""),
) -> ArraySplits:
    """ArraySplits of per-split samples and labels (from :func:`checks.checked_samples`): one
    sample shape and dtype across splits, the classes (see :func:`checks.class_list`; a source's
    own list and where it is, in ``stored_classes``), every label in range. ``where``: the
    places of the samples and of the labels of each split, for the errors."""
    where_x, where_y = where
    check_same_shape(x, where_x)
    names, source = class_list(cfg, stored_classes[0], stored_classes[1], list(y.values()))
    for split, labels in y.items():
        check_label_range(labels, len(names), where_y[split], source)
    return ArraySplits(x=x, y=y, class_names=names, scale=check_sample_dtype(x["train"], where_x["train"]))


def raw_from_splits(data: ArraySplits, cfg: DataConfig, crop_padding: int = 0) -> RawData:
    """RawData of checked splits; the test split is a fixed ``cfg.test_fraction`` of train when
    the source has none. No flips (whether a mirrored sample keeps its class is the user's knowledge)."""
    train_x, train_y = data.x["train"], data.y["train"]
    if "test" in data.x:
        test_x, test_y = data.x["test"], data.y["test"]
    else:
        train_x, train_y, test_x, test_y = hold_out_test(train_x, train_y, cfg.test_fraction)
    return RawData(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        class_names=data.class_names,
        scale=data.scale,
        hflip=False,
        crop_padding=crop_padding,
        val_x=data.x.get("val"),
        val_y=data.y.get("val"),
    )


@dataclass(frozen=True)
class Reader:
    """How one dataset is read, and a cheap content hash of its source."""

    read: Callable[[DataConfig], RawData]
    source_fingerprint: Callable[[DataConfig], str]


def data_root(cfg: DataConfig) -> Path:
    """The configured root, or ./data."""
    return Path(cfg.root).expanduser() if cfg.root else DEFAULT_ROOT


def find_files(place: Path, stems: Sequence[str], suffixes: Sequence[str] = ("",)) -> dict[str, Path] | None:
    """``stem -> path`` when every stem exists in ``place`` with one of ``suffixes``, else None."""
    found: dict[str, Path] = {}
    for stem in stems:
        candidates = [place / f"{stem}{suffix}" for suffix in suffixes]
        match = next((path for path in candidates if path.is_file()), None)
        if match is None:
            return None
        found[stem] = match
    return found


def locate_files(
    cfg: DataConfig,
    places: Sequence[Path],
    stems: Sequence[str],
    suffixes: Sequence[str],
    download: tuple[str, Path],
) -> dict[str, Path] | None:
    """``stem -> path`` in the first of ``places`` holding every stem, else None.

    With ``data.download``, a dataset found nowhere is fetched by torchvision
    (``download`` = its torchvision class name and the place its files land in) and looked
    for there again.
    """
    for place in places:
        found = find_files(place, stems, suffixes)
        if found is not None:
            return found
    if not cfg.download:
        return None
    class_name, landing = download
    torchvision_download(class_name, data_root(cfg))
    return find_files(landing, stems, suffixes)


def not_found(dataset: str, names: str, places: Sequence[Path], hint: str) -> DataError:
    """The error of a dataset whose files (``names``) are in none of ``places``."""
    listed = "\n".join(f"  - {place.resolve()}" for place in places)
    return DataError(f"{dataset} not found: looked for {names} in\n{listed}", path="data.root", hint=hint)


_file_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, memoized on (absolute path, size, mtime) so repeated calls are free."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _file_digests:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _file_digests[key] = digest.hexdigest()
    return _file_digests[key]


def files_fingerprint(kind: str, files: dict[str, Path]) -> str:
    """One hash over the named files' contents (not their paths: a moved copy hashes the same)."""
    digest = hashlib.sha256(kind.encode())
    for stem in sorted(files):
        digest.update(f"\0{stem}\0{file_digest(files[stem])}".encode())
    return digest.hexdigest()


def torchvision_download(class_name: str, root: Path) -> None:
    """Download a dataset with torchvision into ``root`` (its own layout), train and test."""
    try:
        import torchvision.datasets as tv_datasets  # optional dependency
    except Exception as exc:  # ImportError, or a wheel that cannot load against CPU-only torch
        raise DataError(
            f"data.download=true needs torchvision, which cannot be imported here ({exc})",
            path="data.download",
            hint="install torchvision (pip install malak-pipe[vision]) or fetch the files by hand "
            "and point data.root at them",
        ) from None
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        getattr(tv_datasets, class_name)(root=str(root), train=train, download=True)


def as_labels(values: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    """Labels as int64, checked to lie in [0, num_classes)."""
    labels = np.asarray(values, dtype=np.int64)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= num_classes)):
        raise DataError(f"labels must be a vector of ints in [0, {num_classes})", path=str(path))
    return labels
