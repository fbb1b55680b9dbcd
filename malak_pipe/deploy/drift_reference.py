"""The drift reference: fixed-edge histograms of TRAIN inputs and of a model's outputs, as JSON.

Input histograms have about equal-mass bins from training quantiles, edges midway between
neighbouring data values (see :func:`malak_pipe.deploy.drift_stats.robust_edges`), and two
open-ended bins beyond the training range, so out-of-range values land somewhere. Region
histograms hold, per channel and region of a ``grid``, the region's mean value per image.
The reference stores the :class:`DriftThresholds` it was built with; :mod:`malak_pipe.deploy.drift`
checks new batches against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.deploy.configs import DriftConfig, DriftThresholds
from malak_pipe.deploy.drift_stats import region_means, robust_edges, softmax
from malak_pipe.errors import ArtifactError, DataError

REFERENCE_FORMAT = 1
DEFAULT_CONFIDENCE_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)


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
            "thresholds": self.thresholds.model_dump(),
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


# -- building ----------------------------------------------------------------------------------


def check_inputs(x: np.ndarray, shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    """``x`` as float64 N x C x H x W, checked; 1-D signals (N x C x L) become maps of height 1."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, :, None, :]
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
    config: DriftConfig = DriftConfig(),
    confidence_edges: tuple[float, ...] = DEFAULT_CONFIDENCE_EDGES,
    class_names: tuple[str, ...] = (),
    source: dict[str, Any] | None = None,
) -> DriftReference:
    """A reference from normalized ``inputs`` (N x C x H x W) and the model's ``logits`` (M x classes).

    Histograms have ``config.bins`` (per channel) and ``config.region_bins`` (per region of
    ``config.grid``) bins; the reference keeps the threshold fields of ``config``.
    """
    x = check_inputs(inputs, None, "reference inputs")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) == 0:
        raise DataError(f"reference logits have shape {logits.shape}, expected (M, classes)")
    grid = (min(config.grid[0], x.shape[2]), min(config.grid[1], x.shape[3]))
    channel_hist, regions = [], region_means(x, grid)
    for c in range(x.shape[1]):
        hist = Histogram(robust_edges(x[:, c], config.bins), np.zeros(0))
        channel_hist.append(Histogram(hist.edges, hist.count(x[:, c])))
    region_hist = []
    for c in range(x.shape[1]):
        row = []
        for r in range(regions.shape[2]):
            hist = Histogram(robust_edges(regions[:, c, r], config.region_bins), np.zeros(0))
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
        thresholds=DriftThresholds.of(config),
        class_names=tuple(class_names),
        source=dict(source or {}),
    )
