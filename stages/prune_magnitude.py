"""The ``prune_magnitude`` stage: L1 unstructured pruning with fine-tuning, masks made permanent.

One-shot or gradual (polynomial schedule over ``steps`` steps, ``epochs_per_step`` epochs of
fine-tuning between them), local (per layer) or global, then ``finetune`` (FitSettings; null:
none). The output is a dense FP32 model with zeros. Reports the actual sparsity (overall and
per layer) and ``sparse_size_bytes``: the bytes of a bitmask + nonzero-values encoding of the
conv/linear weights (other tensors dense), against ``dense_weight_bytes`` of the same tensors
stored dense (``sparse_compression``). ``size_bytes`` stays the dense checkpoint's size.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import MagnitudePruneConfig
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

SPARSITY_TOLERANCE = 0.01


class PruneMagnitudeConfig(StageConfig, MagnitudePruneConfig):
    """The fields of :class:`malak_pipe.compress.MagnitudePruneConfig` plus the fine-tune."""

    finetune: FitSettings | None = FitSettings(epochs=2, lr=1e-4)


class PruneMagnitude(Stage):
    """Magnitude (L1) unstructured pruning of conv/linear weights."""

    name = "prune_magnitude"
    version = 1
    Config = PruneMagnitudeConfig
    inputs = {"model": "torch_model", "data": "dataset", "baseline": "torch_model"}
    optional_inputs = frozenset({"baseline"})
    outputs = {"model": "torch_model"}
    description = "L1 unstructured pruning (one-shot or gradual), fine-tuned, masks made permanent"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress import MagnitudePruner
        from malak_pipe.compress.magnitude import dense_size_bytes, sparse_size_bytes

        cfg = cast(PruneMagnitudeConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        module = source.module
        input_metrics = reference_metrics(ctx, "model", module, data)
        pruner = MagnitudePruner(library_config(cfg, MagnitudePruneConfig))
        loss_curve = prune_and_finetune(ctx, pruner, module, data, cfg.finetune)
        pruner.remove_masks(module)
        metrics: dict[str, Any] = save_float(ctx, data, source.config, module, input_metrics)
        sparsity = pruner.sparsity(module)
        sparse, dense = sparse_size_bytes(module), dense_size_bytes(module)
        metrics.update(
            {
                "target_sparsity": cfg.sparsity,
                "sparsity": sparsity["overall"],
                "sparsity_per_layer": sparsity["layers"],
                "sparse_size_bytes": sparse,
                "dense_weight_bytes": dense,
                "sparse_compression": dense / sparse if sparse else None,
                "sparsity_schedule": pruner.schedule(),
                "loss_curve": loss_curve,
            }
        )
        return StageResult(metrics=metrics, warnings=_warnings(cfg, sparsity["overall"]))


def _warnings(cfg: PruneMagnitudeConfig, achieved: float) -> list[str]:
    warnings = smoke_warnings(cfg.finetune)
    if abs(achieved - cfg.sparsity) > SPARSITY_TOLERANCE:
        warnings.append(f"achieved sparsity {achieved:.4f} is off the target {cfg.sparsity} by more than 1%")
    return warnings
