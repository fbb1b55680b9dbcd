"""Data drift: a reference of input and output statistics, and a check of a new batch against it.

The reference is built from TRAIN inputs (normalized, N x C x H x W) and the model's logits on
reference data. It keeps, with fixed bin edges:

- per channel: a histogram of pixel values and the mean / std;
- per channel and image region (a ``grid`` of rows x columns): a histogram of the region's
  mean value per image -- this catches local changes that a whole-image histogram averages out;
- the predicted-class distribution and a histogram of the top-1 softmax confidence.

Input histograms have about equal-mass bins from training quantiles, edges midway between
neighbouring data values (see :func:`robust_edges`), and two open-ended bins beyond the
training range, so out-of-range values land somewhere.

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

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.deploy.drift_stats import (
    kl_divergence,
    psi,
    region_means,
    robust_edges,
    softmax,
)
from malak_pipe.errors import ArtifactError, DataError

REFERENCE_FORMAT = 1
DEFAULT_CONFIDENCE_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted (PSI or KL above threshold + expected sampling bias)."""

    psi: float = 0.2
    kl: float = 0.1
    output_psi: float = 0.2
    output_kl: float = 0.1
    region_fraction: float = 0.25
    alpha: float = 0.5
    min_samples: int = 30


@dataclass
class Histogram:
    """Fixed bin ``edges`` (len B + 1, may start at -inf and end at +inf) and reference ``counts``."""

    edges: np.ndarray
    counts: np.ndarray

    def count(self, values: np.ndarray) -> np.ndarray:
        """Counts of ``values`` in this histogram's bins (a value on an edge goes to the bin above)."""
        index = np.searchsorted(self.edges, np.ravel(values), side="right") - 1
        index = np.clip(index, 0, len(self.edges) - 2)
        return np.bincount(index, minlength=len(self.edges) - 1).astype(np.float64)

    def as_dict(self) -> dict[str, Any]:
        return {"edges": [_json_float(e) for e in self.edges], "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Histogram:
        return cls(np.array([float(e) for e in raw["edges"]]), np.array(raw["counts"], dtype=np.float64))


def _json_float(value: float) -> float | str:
    return str(value) if not np.isfinite(value) else float(value)


@dataclass
class DriftReference:
    """Everything a drift check needs, JSON-serialisable (see the module docstring)."""

    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    n_inputs: int
    n_outputs: int
    grid: tuple[int, int]
    channel_hist: list[Histogram]
    channel_mean: list[float]
    channel_std: list[float]
    region_hist: list[list[Histogram]]
    class_counts: np.ndarray
    confidence_hist: Histogram
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    class_names: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT,
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "num_classes": self.num_classes,
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "grid": list(self.grid),
            "channel_hist": [h.as_dict() for h in self.channel_hist],
            "channel_mean": self.channel_mean,
            "channel_std": self.channel_std,
            "region_hist": [[h.as_dict() for h in row] for row in self.region_hist],
            "class_counts": self.class_counts.tolist(),
            "confidence_hist": self.confidence_hist.as_dict(),
            "thresholds": asdict(self.thresholds),
            "class_names": list(self.class_names),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftReference:
        return cls(
            input_shape=tuple(raw["input_shape"]),  # type: ignore[arg-type]
            mean=tuple(raw["mean"]),
            std=tuple(raw["std"]),
            num_classes=int(raw["num_classes"]),
            n_inputs=int(raw["n_inputs"]),
            n_outputs=int(raw["n_outputs"]),
            grid=tuple(raw["grid"]),  # type: ignore[arg-type]
            channel_hist=[Histogram.from_dict(h) for h in raw["channel_hist"]],
            channel_mean=list(raw["channel_mean"]),
            channel_std=list(raw["channel_std"]),
            region_hist=[[Histogram.from_dict(h) for h in row] for row in raw["region_hist"]],
            class_counts=np.array(raw["class_counts"], dtype=np.float64),
            confidence_hist=Histogram.from_dict(raw["confidence_hist"]),
            thresholds=DriftThresholds(**raw.get("thresholds", {})),
            class_names=tuple(raw.get("class_names", ())),
            source=dict(raw.get("source", {})),
        )


def save_reference(reference: DriftReference, path: Path) -> None:
    """Write a reference as JSON."""
    Path(path).write_text(json.dumps(reference.to_dict(), indent=1))


def load_reference(path: Path | str) -> DriftReference:
    """Read a reference; :class:`ArtifactError` naming the file when it is not one."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"not a readable drift reference: {exc}", path=str(path)) from None
    if not isinstance(raw, dict) or raw.get("format") != REFERENCE_FORMAT:
        raise ArtifactError(
            f"not a drift reference (expected a JSON object with format={REFERENCE_FORMAT})",
            path=str(path),
            hint="point at the drift_reference.json written by the drift stage",
        )
    try:
        return DriftReference.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"damaged drift reference ({type(exc).__name__}: {exc})", path=str(path)) from None


# -- features ----------------------------------------------------------------------------------


def _check_inputs(x: np.ndarray, shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or (shape is not None and tuple(x.shape[1:]) != tuple(shape)):
        expected = f"(N, {', '.join(map(str, shape))})" if shape else "(N, C, H, W)"
        raise DataError(f"{what} have shape {tuple(x.shape)}, expected {expected}")
    if not np.isfinite(x).all():
        raise DataError(f"{what} contain NaN or infinite values")
    return x


def build_reference(
    inputs: np.ndarray,
    logits: np.ndarray,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    bins: int = 20,
    region_bins: int = 10,
    grid: tuple[int, int] = (4, 4),
    confidence_edges: tuple[float, ...] = DEFAULT_CONFIDENCE_EDGES,
    thresholds: DriftThresholds | None = None,
    class_names: tuple[str, ...] = (),
    source: dict[str, Any] | None = None,
) -> DriftReference:
    """A reference from normalized ``inputs`` (N x C x H x W) and the model's ``logits`` (M x classes)."""
    x = _check_inputs(inputs, None, "reference inputs")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) == 0:
        raise DataError(f"reference logits have shape {logits.shape}, expected (M, classes)")
    grid = (min(grid[0], x.shape[2]), min(grid[1], x.shape[3]))
    channel_hist, regions = [], region_means(x, grid)
    for c in range(x.shape[1]):
        hist = Histogram(robust_edges(x[:, c], bins), np.zeros(0))
        channel_hist.append(Histogram(hist.edges, hist.count(x[:, c])))
    region_hist = []
    for c in range(x.shape[1]):
        row = []
        for r in range(regions.shape[2]):
            hist = Histogram(robust_edges(regions[:, c, r], region_bins), np.zeros(0))
            row.append(Histogram(hist.edges, hist.count(regions[:, c, r])))
        region_hist.append(row)
    probs = softmax(logits)
    confidence = Histogram(np.array(confidence_edges[:-1] + (np.inf,), dtype=np.float64), np.zeros(0))
    return DriftReference(
        input_shape=tuple(int(d) for d in x.shape[1:]),  # type: ignore[arg-type]
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        num_classes=int(logits.shape[1]),
        n_inputs=len(x),
        n_outputs=len(logits),
        grid=grid,
        channel_hist=channel_hist,
        channel_mean=[float(x[:, c].mean()) for c in range(x.shape[1])],
        channel_std=[float(x[:, c].std()) for c in range(x.shape[1])],
        region_hist=region_hist,
        class_counts=np.bincount(probs.argmax(axis=1), minlength=logits.shape[1]).astype(np.float64),
        confidence_hist=Histogram(confidence.edges, confidence.count(probs.max(axis=1))),
        thresholds=thresholds or DriftThresholds(),
        class_names=tuple(class_names),
        source=dict(source or {}),
    )


# -- divergences -------------------------------------------------------------------------------


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
    x = _check_inputs(inputs, reference.input_shape, "inputs")
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
