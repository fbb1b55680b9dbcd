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

from ._compress import COMPRESSION_SUMMARY, reference_metrics, smoke_warnings, standard_metrics


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
        from malak_pipe.models import ModelArtifact, model_metrics

        cfg = cast(PruneStructuredConfig, cfg)
        data = ctx.load("data")
        source = ctx.load("model")
        module = source.module
        input_metrics = reference_metrics(ctx, "model", module, data)
        before = model_metrics(module, data.input_shape)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            input_latency = latency_ms(module, data.input_shape)
            pruner = StructuredPruner(
                StructuredPruneConfig(**cfg.model_dump(include=set(StructuredPruneConfig.model_fields)))
            )
            batches = _fit_batches(cfg, len(data.train.y))
            with ctx.progress(batches or None, "prune") as bar:
                results = pruner.run(module, data, cfg.finetune, progress=bar)
            latency = latency_ms(module, data.input_shape)
        finally:
            torch.set_num_threads(threads)
        ctx.save("model", ModelArtifact(config=source.config, module=module))
        after = model_metrics(module, data.input_shape)
        metrics: dict[str, Any] = standard_metrics(ctx, data, module, size_metrics=after, input_metrics=input_metrics)
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
                "loss_curve": [loss for result in results for loss in result.loss_curve],
            }
        )
        warnings = smoke_warnings(cfg.finetune)
        if after["params"] >= before["params"]:
            warnings.append(
                "no channel was removed: with importance=bn_scale and scope=global, equal BN scales "
                "(an untrained model) leave nothing below the threshold; raise ratio or use l1"
            )
        return StageResult(metrics=metrics, warnings=warnings)


def _fit_batches(cfg: PruneStructuredConfig, n_train: int) -> int:
    """Batches of all the fine-tuning (between steps and after the last), for the progress bar."""
    from malak_pipe.training import steps_per_epoch

    if cfg.finetune is None:
        return 0
    epochs = cfg.finetune.epochs + cfg.epochs_per_step * (cfg.iterative_steps - 1)
    return epochs * steps_per_epoch(n_train, cfg.finetune)
