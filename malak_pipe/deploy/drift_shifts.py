"""Synthetic shifts of normalized image (or 1-D signal) batches, for the drift stage's self-check and tests."""

from __future__ import annotations

import numpy as np


def _per_channel(values: tuple[float, ...], x: np.ndarray, dtype: object) -> np.ndarray:
    """``values`` shaped to broadcast over the channel axis of ``x`` (N x C x ...)."""
    return np.asarray(values, dtype=dtype).reshape((1, -1) + (1,) * (x.ndim - 2))


def shift_brightness(x: np.ndarray, delta_raw: float, std: tuple[float, ...]) -> np.ndarray:
    """Normalized images made brighter by ``delta_raw`` in raw [0, 1] pixel units."""
    return x + delta_raw / _per_channel(std, x, x.dtype)


def add_noise(x: np.ndarray, sigma_raw: float, std: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """Normalized images with Gaussian noise of ``sigma_raw`` raw pixel units added."""
    rng = np.random.default_rng(seed)
    scale = sigma_raw / _per_channel(std, x, np.float64)
    return (x + rng.standard_normal(x.shape) * scale).astype(x.dtype)


def prior_shift_indices(labels: np.ndarray, keep_fraction: float, seed: int = 0) -> np.ndarray:
    """Indices keeping every sample of the first half of the classes and ``keep_fraction`` of the rest."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    favoured = set(classes[: max(1, len(classes) // 2)].tolist())
    rng = np.random.default_rng(seed)
    keep = [i for i, y in enumerate(labels) if y in favoured or rng.random() < keep_fraction]
    return np.array(keep, dtype=np.int64)
