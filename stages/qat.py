"""The ``qat`` stage: quantization-aware fine-tuning of the FP32 input, then int8 conversion.

prepare (fuse conv-bn(-relu) into QAT modules, insert fake-quantizers) -> train with
``finetune`` (FitSettings; best epoch chosen on val) -> convert to int8. Observers freeze
after ``freeze_observers_after_epoch`` epochs and BN statistics after
``freeze_bn_after_epoch`` (null: never). Reports the FP32 input's accuracy
(``input_test_top1``) next to the int8 result (``test_top1``).
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import QATConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult
from malak_pipe.training.settings import FitSettings

from ._compress import (
    COMPRESSION_SUMMARY,
    fit_metrics,
    library_config,
    reference_metrics,
    save_int8,
    smoke_warnings,
    training_progress,
)


class QATStageConfig(StageConfig, QATConfig):
    """The fields of :class:`malak_pipe.compress.QATConfig` plus the fine-tuning settings."""

    finetune: FitSettings = FitSettings(epochs=3, lr=1e-4)


class QAT(Stage):
    """Quantization-aware training of the input model, converted to int8 at the end."""

    name = "qat"
    version = 2
    Config = QATStageConfig
    inputs = {"model": "torch_model", "data": "dataset", "baseline": "torch_model"}
    optional_inputs = frozenset({"baseline"})
    outputs = {"model": "torch_model_int8"}
    description = "quantization-aware training, then int8 conversion"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress import QAT as QATQuantizer

        cfg = cast(QATStageConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        input_metrics = reference_metrics(ctx, "model", source.module, data)
        quantizer = QATQuantizer(library_config(cfg, QATConfig))
        prepared = quantizer.prepare(source.module)
        with training_progress(ctx, data, cfg.finetune, "qat") as bar:
            fit_result = quantizer.train(prepared, data, cfg.finetune, progress=bar)
        int8 = quantizer.convert(prepared)
        metrics: dict[str, Any] = save_int8(ctx, data, source, quantizer, int8, input_metrics)
        metrics.update(
            {
                "input_test_top1": input_metrics["test_top1"],
                "fake_quant_best_val_top1": fit_result.best_val_top1,
                **fit_metrics(fit_result, cfg.finetune),
            }
        )
        return StageResult(metrics=metrics, warnings=smoke_warnings(cfg.finetune))
