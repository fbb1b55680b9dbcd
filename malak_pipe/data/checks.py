"""Checks of user-supplied samples and labels, each naming where the bad value is.

The ``image_folder``, ``arrays`` and ``factory`` sources run their data through these
before anything trains: values must be finite, labels integers in range, every split of the
same sample shape, axes in a known layout. ``where`` is the file (and key) or the config
path the error names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from malak_pipe.data.config import ArrayLayout, DataConfig
from malak_pipe.data.splits import stratified_pick
from malak_pipe.errors import DataError

TEST_SEED = 0  # fixed, not split_seed: a held-out test split must not move between runs
_CHANNEL_COUNTS = (1, 3, 4)


def check_finite(x: np.ndarray, where: str) -> None:
    """DataError naming the first sample holding NaN or an infinity."""
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1) if len(x) else np.zeros(0, dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{int(bad.sum())} sample(s) hold NaN or infinite values (the first is sample {first})",
            path=where,
            hint="clean or drop those samples before training",
        )


def check_sample_dtype(x: np.ndarray, where: str) -> float:
    """The value of a white pixel for ``x``'s dtype: 255 for uint8, 1 for floats; DataError otherwise."""
    if x.dtype == np.uint8:
        return 255.0
    if np.issubdtype(x.dtype, np.floating):
        return 1.0
    raise DataError(
        f"samples of dtype {x.dtype} are not supported",
        path=where,
        hint="store uint8 (0..255, scaled to [0, 1]) or float values",
    )


def labels_of(y: np.ndarray, count: int, where: str) -> np.ndarray:
    """``y`` as an int64 vector of ``count`` labels; DataError for other shapes or fractional values."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count:
        raise DataError(f"expected {count} labels (a vector), got shape {list(y.shape)}", path=where)
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError("labels must be whole numbers (class indices)", path=where)
    elif not np.issubdtype(y.dtype, np.integer) and y.dtype != np.bool_:
        raise DataError(f"labels of dtype {y.dtype} are not class indices", path=where)
    return y.astype(np.int64)


def check_label_range(y: np.ndarray, num_classes: int, where: str, why: str) -> None:
    """DataError naming the first label outside [0, num_classes); ``why`` says where the class count comes from."""
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"label {int(y[first])} of sample {first} is out of range: {why} gives {num_classes} classes, "
            f"so labels must lie in [0, {num_classes})",
            path=where,
            hint="fix the labels, or set data.num_classes / data.class_names to the real classes",
        )


def resolve_layout(shape: Sequence[int], layout: ArrayLayout, where: str) -> str:
    """The concrete layout of an array of ``shape`` under ``layout`` (see :data:`ArrayLayout`)."""
    ndim = len(shape)
    if layout == "auto":
        if ndim == 4:
            nhwc = shape[3] in _CHANNEL_COUNTS and shape[1] not in _CHANNEL_COUNTS
            return "nhwc" if nhwc else "nchw"
        if ndim == 3:
            return "ncl"
    elif (layout in ("nchw", "nhwc") and ndim == 4) or (layout in ("ncl", "nlc") and ndim == 3):
        return layout
    raise DataError(
        f"samples of shape {list(shape)} do not fit layout '{layout}'",
        path=where,
        hint="store images as N x C x H x W or N x H x W x C and 1-D signals as N x C x L (data.layout=ncl) "
        "or N x L x C (data.layout=nlc)",
    )


def channels_first(x: np.ndarray, layout: str) -> np.ndarray:
    """``x`` (in a layout from :func:`resolve_layout`) as N x C x H x W or N x C x L."""
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if layout == "nlc":
        return np.ascontiguousarray(x.transpose(0, 2, 1))
    return x


def check_same_shape(splits: dict[str, np.ndarray], where: dict[str, str]) -> None:
    """DataError when the splits' samples differ in shape (or dtype kind)."""
    reference_name, reference = next(iter(splits.items()))
    for name, x in splits.items():
        if x.shape[1:] != reference.shape[1:]:
            raise DataError(
                f"{name} samples have shape {list(x.shape[1:])} but {reference_name} samples "
                f"{list(reference.shape[1:])}",
                path=where[name],
                hint="every split must hold samples of one shape",
            )
        if (x.dtype == np.uint8) != (reference.dtype == np.uint8):
            raise DataError(
                f"{name} samples are {x.dtype} but {reference_name} samples {reference.dtype}",
                path=where[name],
                hint="store every split with one dtype (uint8 0..255, or floats)",
            )


def hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float) -> tuple[np.ndarray, ...]:
    """(train_x, train_y, test_x, test_y): a fixed stratified ``fraction`` held out as the test split."""
    test, train = stratified_pick(y, round(fraction * len(y)), TEST_SEED)
    return x[train], y[train], x[test], y[test]


def checked_samples(
    x: np.ndarray, y: np.ndarray, layout: ArrayLayout, where_x: str, where_y: str
) -> tuple[np.ndarray, ...]:
    """(samples channels-first, int64 labels) of one split, with its dtype, layout, values and labels checked."""
    check_sample_dtype(x, where_x)
    x = channels_first(x, resolve_layout(x.shape, layout, where_x))
    check_finite(x, where_x)
    return x, labels_of(y, len(x), where_y)


def class_list(
    cfg: DataConfig, stored: np.ndarray | None, stored_at: str, labels: list[np.ndarray]
) -> tuple[tuple[str, ...], str]:
    """(class names, where their count comes from): data.class_names, the ``stored`` list (found
    at ``stored_at``), data.num_classes or the largest label + 1; a count disagreeing with
    data.num_classes is an error."""
    if cfg.class_names is not None:
        names, source = tuple(cfg.class_names), "data.class_names"
    elif stored is not None:
        names, source = tuple(str(n) for n in np.asarray(stored).reshape(-1)), stored_at
    else:
        count = cfg.num_classes or (max(int(y.max()) for y in labels if len(y)) + 1)
        names, source = tuple(str(i) for i in range(count)), "data.num_classes" if cfg.num_classes else "the labels"
    if cfg.num_classes is not None and cfg.num_classes != len(names):
        raise DataError(
            f"data.num_classes is {cfg.num_classes} but {source} names {len(names)} classes",
            path="data.num_classes",
            hint=f"set data.num_classes={len(names)}",
        )
    return names, source
