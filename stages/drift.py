"""The ``drift`` stage: build the drift reference of a model and check that it works.

The reference (input histograms per channel and per image region, predicted-class
distribution, confidence histogram; see :mod:`malak_pipe.deploy.drift`) is built from the TRAIN
split and saved as the ``reference`` artifact. The stage then checks it on the clean test
split (must not flag) and on synthetic shifts of the test split -- brightness (+0.3 raw pixel
units), Gaussian noise, a class-prior change by subsampling -- which must be flagged. Every
check is a metric; a check that goes the wrong way is a warning.

Deployed, ``malak-drift check --reference <ref> --model <model> --inputs <batch>`` runs the
same check on a new batch (exit 0 no drift, 1 drift, 2 bad input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from malak_pipe.deploy.configs import DriftConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult


class DriftStageConfig(StageConfig, DriftConfig):
    """The fields of :class:`malak_pipe.deploy.configs.DriftConfig`."""


def predictor_for(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Logits function for a loaded torch_model (ModelArtifact) or ONNX model (OnnxModel)."""
    from malak_pipe.deploy.artifact import OnnxModel

    if isinstance(model, OnnxModel):
        from malak_pipe.deploy.ort_runtime import OrtPredictor

        return OrtPredictor(model.path)
    from malak_pipe.deploy.onnx_export import torch_logits

    return lambda x: torch_logits(model.module, x)


def shifted_batches(cfg: DriftConfig, data: Any) -> dict[str, tuple[np.ndarray, bool]]:
    """name -> (normalized test images, whether drift must be flagged)."""
    from malak_pipe.deploy.drift_shifts import add_noise, prior_shift_indices, shift_brightness

    x, y = data.test.x.numpy(), data.test.y.numpy()
    return {
        "clean": (x, False),
        "brightness": (shift_brightness(x, cfg.brightness_raw, data.std), True),
        "noise": (add_noise(x, cfg.noise_std_raw, data.std, seed=cfg.seed), True),
        "prior_shift": (x[prior_shift_indices(y, cfg.prior_keep_fraction, seed=cfg.seed)], True),
    }


class Drift(Stage):
    """Build the drift reference from TRAIN data; verify it on clean and shifted test data."""

    name = "drift"
    version = 1
    Config = DriftStageConfig
    inputs = {"model": ("torch_model", "onnx_model", "onnx_model_int8"), "data": "dataset"}
    outputs = {"reference": "drift_reference"}
    description = "drift reference (input/output histograms) checked on clean and shifted test data"
    summary = {"drift_detected": "drift {}", "self_check_ok": "drift self-check {:passed|FAILED}"}

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.deploy.drift import build_reference, check_drift

        cfg = cast(DriftStageConfig, cfg)
        data = ctx.load("data")
        predict = predictor_for(ctx.load("model"))
        output_x = data.split(cfg.output_reference).x.numpy()
        reference = build_reference(
            data.train.x.numpy(),
            predict(output_x),
            mean=data.mean,
            std=data.std,
            config=cfg,
            class_names=tuple(data.class_names),
            source={
                "dataset": data.name,
                "fingerprint": data.fingerprint,
                "inputs": "train",
                "outputs": cfg.output_reference,
            },
        )
        ctx.save("reference", reference)
        checks: dict[str, Any] = {}
        warnings = []
        for name, (x, expected) in shifted_batches(cfg, data).items():
            report = check_drift(reference, x, predict(x))  # the thresholds the reference keeps
            checks[name] = {**report.summary(), "expected_drift": expected, "ok": report.drift == expected}
            if report.drift != expected:
                warnings.append(f"drift check '{name}': drift={report.drift}, expected {expected}")
            ctx.log(f"{name}: drift={report.drift} ({'; '.join(report.reasons) or 'quiet'})")
        metrics: dict[str, Any] = {
            "checks": checks,
            "self_check_ok": all(c["ok"] for c in checks.values()),
            **{f"drift_{name}": c["drift"] for name, c in checks.items()},
            "reference_samples": reference.n_inputs,
        }
        return StageResult(metrics=metrics, warnings=warnings)
