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

from ._compress import COMPRESSION_SUMMARY, reference_metrics, smoke_warnings, standard_metrics

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
        from malak_pipe.models import ModelArtifact, model_metrics

        cfg = cast(PruneMagnitudeConfig, cfg)
        data = ctx.load("data")
        source = ctx.load("model")
        input_metrics = reference_metrics(ctx, "model", source.module, data)
        pruner = MagnitudePruner(MagnitudePruneConfig(**cfg.model_dump(include=set(MagnitudePruneConfig.model_fields))))
        module = source.module
        steps = _fit_steps(pruner, data, cfg.finetune)
        with ctx.progress(steps or None, "prune") as bar:
            results = pruner.run(module, data, cfg.finetune, progress=bar)
        pruner.remove_masks(module)
        ctx.save("model", ModelArtifact(config=source.config, module=module))
        sparsity = pruner.sparsity(module)
        metrics: dict[str, Any] = standard_metrics(
            ctx, data, module, size_metrics=model_metrics(module, data.input_shape), input_metrics=input_metrics
        )
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
                "loss_curve": [loss for result in results for loss in result.loss_curve],
            }
        )
        return StageResult(metrics=metrics, warnings=_warnings(cfg, sparsity["overall"]))


def _fit_steps(pruner: Any, data: Any, settings: FitSettings | None) -> int:
    """Batches of all the fine-tuning (between steps and after the last), for the progress bar."""
    from malak_pipe.training import steps_per_epoch

    if settings is None:
        return 0
    between = pruner.config.epochs_per_step * (len(pruner.schedule()) - 1)
    return (settings.epochs + between) * steps_per_epoch(len(data.train.y), settings)


def _warnings(cfg: PruneMagnitudeConfig, achieved: float) -> list[str]:
    warnings = smoke_warnings(cfg.finetune)
    if abs(achieved - cfg.sparsity) > SPARSITY_TOLERANCE:
        warnings.append(f"achieved sparsity {achieved:.4f} is off the target {cfg.sparsity} by more than 1%")
    return warnings
