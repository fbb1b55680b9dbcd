"""The ``prune_structured`` stage: remove channels (torch-pruning), fine-tune, save a smaller model.

Channels are ranked by ``importance`` (l1 | l2 filter norms, or bn_scale: network slimming)
and removed with their whole dependency group (residual adds, depthwise convs), uniformly per
layer or globally; the classifier's outputs are never pruned. The result is a dense model
with fewer parameters, MACs, bytes and batch-1 latency (``latency_ms_batch1`` against
``input_latency_ms_batch1``, single-thread medians). Saved as the input's ModelConfig with the
pruned weights: loading adapts the layer shapes.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import StructuredPruneConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult
from malak_pipe.training.settings import FitSettings

from ._compress import (
    COMPRESSION_SUMMARY,
    library_config,
    prune_and_finetune,
    reference_metrics,
    save_float,
    smoke_warnings,
)


class PruneStructuredConfig(StageConfig, StructuredPruneConfig):
    """The fields of :class:`malak_pipe.compress.StructuredPruneConfig` plus the fine-tune."""

    finetune: FitSettings | None = FitSettings(epochs=3, lr=5e-4)


class PruneStructured(Stage):
    """Channel pruning that yields a smaller dense model."""

    name = "prune_structured"
    version = 1
    Config = PruneStructuredConfig
    inputs = {"model": "torch_model", "data": "dataset", "baseline": "torch_model"}
    optional_inputs = frozenset({"baseline"})
    outputs = {"model": "torch_model"}
    description = "structured channel pruning (torch-pruning dependency groups), then fine-tuning"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        import torch

        from malak_pipe.compress import StructuredPruner
        from malak_pipe.compress.report import latency_ms
        from malak_pipe.models import model_metrics

        cfg = cast(PruneStructuredConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        module = source.module
        input_metrics = reference_metrics(ctx, "model", module, data)
        before = model_metrics(module, data.input_shape)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            input_latency = latency_ms(module, data.input_shape)
            pruner = StructuredPruner(library_config(cfg, StructuredPruneConfig))
            loss_curve = prune_and_finetune(ctx, pruner, module, data, cfg.finetune)
            latency = latency_ms(module, data.input_shape)
        finally:
            torch.set_num_threads(threads)
        after = model_metrics(module, data.input_shape)
        metrics: dict[str, Any] = save_float(ctx, data, source.config, module, input_metrics, after)
        metrics.update(
            {
                "input_params": before["params"],
                "input_macs": before["macs"],
                "input_size_bytes": before["size_bytes"],
                "params_ratio": after["params"] / before["params"],
                "macs_ratio": after["macs"] / before["macs"] if before["macs"] else None,
                "latency_ms_batch1": latency,
                "input_latency_ms_batch1": input_latency,
                "latency_speedup": input_latency / latency if latency else None,
                "loss_curve": loss_curve,
            }
        )
        warnings = smoke_warnings(cfg.finetune)
        if after["params"] >= before["params"]:
            warnings.append(
                "no channel was removed: with importance=bn_scale and scope=global, equal BN scales "
                "(an untrained model) leave nothing below the threshold; raise ratio or use l1"
            )
        return StageResult(metrics=metrics, warnings=warnings)
