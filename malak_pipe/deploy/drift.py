"""Data drift: a reference of input and output statistics, and a check of a new batch against it.

The reference is built from TRAIN inputs (normalized, N x C x H x W) and the model's logits on
reference data. It keeps, with fixed bin edges:

- per channel: a histogram of pixel values and the mean / std;
- per channel and image region (a ``grid`` of rows x columns): a histogram of the region's
  mean value per image -- this catches local changes that a whole-image histogram averages out;
- the predicted-class distribution and a histogram of the top-1 softmax confidence.

Input histograms have about equal-mass bins from training quantiles, edges midway between
neighbouring data values, and two open-ended bins beyond the training range, so out-of-range
values land somewhere. The reference and its JSON file are :mod:`malak_pipe.deploy.drift_reference`
(re-exported here); this module holds the check.

A new batch is compared bin by bin with the population stability index
``PSI = sum (p - q) ln(p / q)`` and ``KL(new || reference) = sum p ln(p / q)``, both on
additively smoothed proportions ``(count + alpha) / (n + alpha * bins)``, so an empty bin never
gives an infinity. Because both statistics are positive even between two samples of one
distribution (about ``(bins - 1) (1/n_ref + 1/n_new)`` for PSI, half that for KL), each
threshold is raised by that expected sampling bias: a small clean batch is not called drift.
Images, not pixels, count as samples (pixels of one image are correlated), which errs on the
quiet side for pixel histograms.

The verdict flags drift when a channel histogram, more than ``region_fraction`` of the region
features, the predicted-class distribution or the confidence histogram exceeds its threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from malak_pipe.deploy.configs import DriftThresholds
from malak_pipe.deploy.drift_reference import (
    DriftReference,
    Histogram,
    build_reference,
    check_inputs,
    load_reference,
    save_reference,
)
from malak_pipe.deploy.drift_stats import kl_divergence, psi, region_means, softmax
from malak_pipe.errors import DataError

__all__ = [
    "DriftReference",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "Histogram",
    "build_reference",
    "check_drift",
    "compare",
    "load_reference",
    "save_reference",
]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: statistics, the thresholds they were held against, the outcome."""

    name: str
    psi: float
    kl: float
    psi_limit: float
    kl_limit: float

    @property
    def drift(self) -> bool:
        return self.psi > self.psi_limit or self.kl > self.kl_limit

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drift": self.drift}


def compare(
    name: str,
    new_counts: np.ndarray,
    ref_counts: np.ndarray,
    n_new: int,
    n_ref: int,
    psi_threshold: float,
    kl_threshold: float,
    alpha: float,
) -> FeatureDrift:
    """PSI and KL of a feature, with limits raised by their expected sampling bias."""
    occupied = int(np.count_nonzero((np.asarray(new_counts) > 0) | (np.asarray(ref_counts) > 0)))
    bias = max(occupied - 1, 0) * (1.0 / max(n_ref, 1) + 1.0 / max(n_new, 1))
    return FeatureDrift(
        name=name,
        psi=psi(new_counts, ref_counts, alpha),
        kl=kl_divergence(new_counts, ref_counts, alpha),
        psi_limit=psi_threshold + bias,
        kl_limit=kl_threshold + bias / 2,
    )


@dataclass
class DriftReport:
    """The verdict on one batch: ``drift``, human-readable ``reasons`` and every feature's numbers."""

    drift: bool
    reasons: list[str]
    n: int
    channels: list[FeatureDrift]
    regions: list[FeatureDrift]
    predictions: FeatureDrift
    confidence: FeatureDrift
    channel_mean_shift: list[float]
    region_drift_fraction: float

    def summary(self) -> dict[str, Any]:
        """Key numbers (JSON): the verdict, the worst statistics per group."""
        return {
            "drift": self.drift,
            "reasons": self.reasons,
            "n": self.n,
            "input_psi_max": max(f.psi for f in self.channels),
            "region_psi_max": max((f.psi for f in self.regions), default=0.0),
            "region_drift_fraction": self.region_drift_fraction,
            "prediction_psi": self.predictions.psi,
            "prediction_kl": self.predictions.kl,
            "confidence_psi": self.confidence.psi,
            "confidence_kl": self.confidence.kl,
            "channel_mean_shift_std": self.channel_mean_shift,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "channels": [f.as_dict() for f in self.channels],
            "regions": [f.as_dict() for f in self.regions],
            "predictions": self.predictions.as_dict(),
            "confidence": self.confidence.as_dict(),
        }


def _input_features(ref: DriftReference, x: np.ndarray, t: DriftThresholds) -> tuple[list, list]:
    n, regions = len(x), region_means(x, ref.grid)
    channels = [
        compare(f"channel {c} pixels", hist.count(x[:, c]), hist.counts, n, ref.n_inputs, t.psi, t.kl, t.alpha)
        for c, hist in enumerate(ref.channel_hist)
    ]
    cols = ref.grid[1]
    region_features = [
        compare(
            f"channel {c} region ({r // cols},{r % cols}) mean",
            hist.count(regions[:, c, r]),
            hist.counts,
            n,
            ref.n_inputs,
            t.psi,
            t.kl,
            t.alpha,
        )
        for c, row in enumerate(ref.region_hist)
        for r, hist in enumerate(row)
    ]
    return channels, region_features


def check_drift(
    reference: DriftReference, inputs: np.ndarray, logits: np.ndarray, thresholds: DriftThresholds | None = None
) -> DriftReport:
    """Compare a batch (normalized inputs and the model's logits on them) with ``reference``."""
    t = thresholds or reference.thresholds
    x = check_inputs(inputs, reference.input_shape, "inputs")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (len(x), reference.num_classes):
        raise DataError(f"logits have shape {logits.shape}, expected ({len(x)}, {reference.num_classes})")
    if len(x) < t.min_samples:
        raise DataError(
            f"{len(x)} samples are too few for a drift verdict (at least {t.min_samples})",
            hint="check a larger batch, or lower min_samples",
        )
    channels, regions = _input_features(reference, x, t)
    probs = softmax(logits)
    predicted = np.bincount(probs.argmax(axis=1), minlength=reference.num_classes)
    predictions = compare(
        "predicted classes",
        predicted,
        reference.class_counts,
        len(x),
        reference.n_outputs,
        t.output_psi,
        t.output_kl,
        t.alpha,
    )
    hist = reference.confidence_hist
    confidence = compare(
        "top-1 confidence",
        hist.count(probs.max(axis=1)),
        hist.counts,
        len(x),
        reference.n_outputs,
        t.output_psi,
        t.output_kl,
        t.alpha,
    )
    fraction = sum(f.drift for f in regions) / len(regions) if regions else 0.0
    reasons = [_reason(f) for f in channels if f.drift]
    if fraction > t.region_fraction:
        worst = max(regions, key=lambda f: f.psi)
        reasons.append(
            f"{sum(f.drift for f in regions)} of {len(regions)} region features drift "
            f"(> {t.region_fraction:.0%}; worst {_reason(worst)})"
        )
    reasons += [_reason(f) for f in (predictions, confidence) if f.drift]
    shift = [
        float((x[:, c].mean() - reference.channel_mean[c]) / max(reference.channel_std[c], 1e-12))
        for c in range(x.shape[1])
    ]
    return DriftReport(bool(reasons), reasons, len(x), channels, regions, predictions, confidence, shift, fraction)


def _reason(f: FeatureDrift) -> str:
    return f"{f.name}: PSI {f.psi:.3f} (limit {f.psi_limit:.3f}), KL {f.kl:.3f} (limit {f.kl_limit:.3f})"
