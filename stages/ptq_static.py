"""The ``ptq_static`` stage: fuse, calibrate on TRAIN batches, convert to int8.

Weights symmetric int8 per output channel (``per_channel``), activations asymmetric uint8
per tensor, observed with ``observer`` (minmax | histogram) on ``calibration_batches``
batches of ``calibration_batch_size`` images drawn (with ``seed``) from the train split,
never from val or test. The int8 model runs on the ``backend``'s int8 kernels.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import StaticPTQConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult

from ._compress import COMPRESSION_SUMMARY, library_config, save_int8


class PTQStaticConfig(StageConfig, StaticPTQConfig):
    """The fields of :class:`malak_pipe.compress.StaticPTQConfig`."""


class PTQStatic(Stage):
    """Static post-training int8 quantization calibrated on the train split."""

    name = "ptq_static"
    version = 2
    Config = PTQStaticConfig
    inputs = {"model": "torch_model", "data": "dataset", "baseline": "torch_model"}
    optional_inputs = frozenset({"baseline"})
    outputs = {"model": "torch_model_int8"}
    description = "static int8 quantization (conv-bn-relu fusion, calibration on train batches)"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress import StaticPTQ

        cfg = cast(PTQStaticConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        quantizer = StaticPTQ(library_config(cfg, StaticPTQConfig))
        prepared = quantizer.prepare(source.module)
        batches = quantizer.calibration_batches(data)
        quantizer.calibrate(prepared, batches)
        metrics: dict[str, Any] = save_int8(ctx, data, source, quantizer, quantizer.convert(prepared))
        metrics["calibration_images"] = sum(len(batch) for batch in batches)
        warnings = []
        if metrics["calibration_images"] < cfg.calibration_batches * cfg.calibration_batch_size:
            warnings.append(
                f"the train split has only {metrics['calibration_images']} images: calibrated on all of them"
            )
        return StageResult(metrics=metrics, warnings=warnings)
