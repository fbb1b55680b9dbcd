"""Histogram features and divergences used by the drift check (numpy only).

Region means catch local changes that a whole-image histogram averages out; bin edges sit
between neighbouring data values so re-quantized data does not jump bins; PSI and KL work on
additively smoothed proportions, so an empty bin never gives an infinity.
"""

from __future__ import annotations

import numpy as np


def _region_bounds(size: int, parts: int) -> list[tuple[int, int]]:
    cuts = np.linspace(0, size, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def region_means(x: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of every image's ``grid`` regions per channel: N x C x (rows * cols)."""
    rows = _region_bounds(x.shape[2], grid[0])
    cols = _region_bounds(x.shape[3], grid[1])
    parts = [x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)) for r0, r1 in rows for c0, c1 in cols]
    return np.stack(parts, axis=2)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


MAX_EDGE_SAMPLES = 200_000


def robust_edges(values: np.ndarray, bins: int, seed: int = 0) -> np.ndarray:
    """Fixed bin edges for ``values``: about ``bins`` equal-mass bins, plus two open-ended outer bins.

    Every edge sits midway between two neighbouring distinct reference values, never on one,
    so data that takes discrete levels (8-bit pixels, digits' 17 levels) does not jump bins
    when it is re-quantized by less than half a level (e.g. stored as uint8 and read back). With
    fewer distinct values than bins, every value gets its own bin. The outer bins start half a
    typical gap beyond the reference minimum and maximum.
    """
    flat = np.ravel(values).astype(np.float64)
    if flat.size > MAX_EDGE_SAMPLES:
        flat = np.random.default_rng(seed).choice(flat, MAX_EDGE_SAMPLES, replace=False)
    levels = np.unique(flat)
    if levels.size == 1:
        return np.array([-np.inf, levels[0] - 0.5, levels[0] + 0.5, np.inf])
    gaps = np.diff(levels)
    margin = 0.5 * float(np.median(gaps))
    if levels.size <= bins:
        inner = levels[:-1] + gaps / 2
    else:
        quantiles = np.quantile(flat, np.linspace(0, 1, bins + 1)[1:-1])
        above = np.clip(np.searchsorted(levels, quantiles, side="right"), 1, levels.size - 1)
        inner = np.unique((levels[above - 1] + levels[above]) / 2)
    outer = [levels[0] - margin, levels[-1] + margin]
    return np.concatenate([[-np.inf, outer[0]], inner, [outer[1], np.inf]])


def smoothed(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Additively smoothed proportions ``(count + alpha) / (n + alpha * bins)``."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + alpha) / (counts.sum() + alpha * len(counts))


def psi(new_counts: np.ndarray, ref_counts: np.ndarray, alpha: float = 0.5) -> float:
    """Population stability index of two count vectors over the same bins (smoothed)."""
    p, q = smoothed(new_counts, alpha), smoothed(ref_counts, alpha)
    return float(np.sum((p - q) * np.log(p / q)))


def kl_divergence(new_counts: np.ndarray, ref_counts: np.ndarray, alpha: float = 0.5) -> float:
    """KL(new || reference) of two count vectors over the same bins (smoothed)."""
    p, q = smoothed(new_counts, alpha), smoothed(ref_counts, alpha)
    return float(np.sum(p * np.log(p / q)))
