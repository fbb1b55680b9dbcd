"""The ``train`` stage: build the configured model and train the FP32 baseline.

Config (conf/stage/train/default.yaml): ``model`` (the model group, a ModelConfig), ``seed``
and the fields of :class:`malak_pipe.training.FitSettings`. The checkpoint is chosen on the
validation split; the test split is only evaluated at the end.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.models.config import ModelConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult
from malak_pipe.training.settings import FitSettings

from ._compress import smoke_warnings, training_progress


class TrainConfig(StageConfig, FitSettings):
    """FitSettings plus the architecture to train."""

    model: ModelConfig


class Train(Stage):
    """Train a model from scratch on the dataset; keep the best epoch by val top-1."""

    name = "train"
    version = 1
    Config = TrainConfig
    inputs = {"data": "dataset"}
    outputs = {"model": "torch_model"}
    description = "train the FP32 baseline (best epoch chosen on the val split)"
    summary = {"test_top1": "top1 {:.2%}", "size_bytes": "{:bytes}"}

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.models import ModelArtifact, build_model, check_model_fits_data, model_metrics
        from malak_pipe.training import evaluate, fit, seed_everything

        cfg = cast(TrainConfig, cfg)
        data = ctx.load("data")
        model_cfg = cfg.model.for_data(data.input_shape, data.num_classes)  # fields left null follow the data
        check_model_fits_data(model_cfg, data.input_shape, data.num_classes, "model")
        settings = FitSettings(**cfg.model_dump(exclude={"model"}))
        seed_everything(settings.seed)
        module = build_model(model_cfg)
        with training_progress(ctx, data, settings, "train") as bar:
            result = fit(module, data, settings, progress=bar)
        test = evaluate(module, data, "test")
        val_top1 = evaluate(module, data, "val").top1 if len(data.val) else None
        ctx.save("model", ModelArtifact(config=model_cfg, module=module))
        val_text = "n/a" if val_top1 is None else f"{val_top1:.4f}"
        ctx.log(f"best epoch {result.best_epoch}/{settings.epochs}: val {val_text}, test {test.top1:.4f}")
        metrics: dict[str, Any] = {
            "val_top1": val_top1,
            "test_top1": test.top1,
            "test_loss": test.loss,
            "test_per_class_top1": test.per_class_top1,
            "best_epoch": result.best_epoch,
            "epochs": settings.epochs,
            **model_metrics(module, data.input_shape),
            "train_seconds": result.train_seconds,
            "samples_per_second": result.samples_per_second,
            "loss_curve": result.loss_curve,
            "val_curve": result.val_curve,
        }
        return StageResult(metrics=metrics, warnings=smoke_warnings(settings))
