"""Deterministic stratified selection of samples (for val splits and subsets)."""

from __future__ import annotations

import numpy as np


def stratified_pick(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``count`` indices keeping class proportions; returns (picked, rest), both sorted.

    Samples are shuffled with ``seed``; each gets its rank within its class divided by the
    class size, and the ``count`` smallest are picked, so every class contributes in proportion
    (up to rounding) and the same seed always picks the same samples.
    """
    total = len(labels)
    count = max(0, min(count, total))
    order = np.random.default_rng(seed).permutation(total)
    shuffled = labels[order]
    class_sizes = np.bincount(shuffled) if total else np.zeros(0, dtype=np.int64)
    rank_in_class = np.zeros(total, dtype=np.float64)
    for cls in np.flatnonzero(class_sizes):
        members = np.flatnonzero(shuffled == cls)
        rank_in_class[members] = (np.arange(len(members)) + 0.5) / len(members)
    chosen = np.argsort(rank_in_class, kind="stable")[:count]
    picked_mask = np.zeros(total, dtype=bool)
    picked_mask[order[chosen]] = True
    return np.flatnonzero(picked_mask), np.flatnonzero(~picked_mask)


def subset(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a stratified subset of at most ``limit`` samples (all of them when None)."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    return stratified_pick(labels, limit, seed)[0]
