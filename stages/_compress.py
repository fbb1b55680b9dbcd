"""What the six compression stages share: the library config, the reference metrics, saving the
output with the standard report, and the progress bar, figures and warnings of their training
(which the train stage uses too).

``reference_metrics`` reads an upstream node's metrics (ctx.input_metrics) and evaluates the
upstream model itself only when they lack the accuracy figures; ``standard_metrics`` evaluates
the compressed model and adds the comparisons of :func:`malak_pipe.compress.report.comparison_metrics`
against the input model and, when the optional ``baseline`` input is wired, the FP32 baseline.
Imports torch only inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from malak_pipe.models.config import ModelConfig
from malak_pipe.stage import StageConfig, StageContext
from malak_pipe.training.settings import FitSettings

BASELINE = "baseline"
C = TypeVar("C", bound=BaseModel)

COMPRESSION_SUMMARY = {
    "test_top1": "top1 {:.2%}",
    "test_top1_drop_vs_baseline_pp": "drop {:+.2f}pp",
    "compression_vs_baseline": "{:.2f}x smaller",
    "sparsity": "sparsity {:.2%}",
    "size_bytes": "{:bytes}",
}
"""What the console shows for every compression stage."""


def reference_metrics(ctx: StageContext, input_name: str, module: Any, data: Any) -> dict[str, Any]:
    """Metrics of the model behind ``input_name``; evaluated here when upstream has none."""
    from malak_pipe.compress.report import evaluation_metrics
    from malak_pipe.models import model_metrics, serialized_bytes

    metrics = dict(ctx.input_metrics(input_name))
    if metrics.get("test_top1") is None or not metrics.get("test_per_class_top1"):
        metrics.update(evaluation_metrics(module, data))
    if not metrics.get("size_bytes"):
        metrics["size_bytes"] = serialized_bytes(module)
    if metrics.get("params") is None and not _is_quantized(module):
        metrics.update(model_metrics(module, data.input_shape))
    return metrics


def _is_quantized(module: Any) -> bool:
    """Whether ``module`` holds int8 tensors (its parameter and MAC counts would mislead)."""
    return any(getattr(value, "is_quantized", False) for value in module.state_dict().values())


def baseline_metrics(ctx: StageContext, data: Any) -> dict[str, Any] | None:
    """Metrics of the optional FP32 ``baseline`` input (None when it is not wired)."""
    if not ctx.has_input(BASELINE):
        return None
    metrics = dict(ctx.input_metrics(BASELINE))
    if metrics.get("test_top1") is None or not metrics.get("size_bytes"):
        return reference_metrics(ctx, BASELINE, ctx.load(BASELINE).module, data)
    return metrics


def file_bytes(path: Path) -> int:
    """Size of an artifact on disk: a file's bytes, or the sum of a directory's files."""
    if path.is_dir():
        return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return path.stat().st_size


def with_file_size(ctx: StageContext, input_name: str, metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """``metrics`` with ``size_bytes`` set to the bytes of the artifact file behind ``input_name``.

    The int8 stages report the size of the int8 artifact file they wrote; their compression
    ratios divide the input's (or baseline's) artifact file by it, like with like (the
    upstream ``size_bytes`` of a train node is the bytes of a bare ``torch.save(state_dict)``).
    """
    if metrics is None:
        return None
    return {**metrics, "size_bytes": file_bytes(ctx.input_path(input_name))}


def standard_metrics(
    ctx: StageContext,
    data: Any,
    module: Any,
    *,
    size_metrics: dict[str, Any],
    input_metrics: dict[str, Any],
    file_sizes: bool = False,
) -> dict[str, Any]:
    """val/test accuracy of ``module``, its size figures, and the drops vs input and baseline.

    ``file_sizes``: compare ``size_metrics["size_bytes"]`` (then the bytes of the artifact
    file the stage wrote) with the artifact files of the ``model`` and ``baseline`` inputs.
    """
    from malak_pipe.compress.report import comparison_metrics, evaluation_metrics

    metrics = {**evaluation_metrics(module, data), **size_metrics}
    baseline = baseline_metrics(ctx, data)
    if file_sizes:
        input_metrics = with_file_size(ctx, "model", input_metrics) or {}
        baseline = with_file_size(ctx, BASELINE, baseline)
        metrics["input_size_bytes"] = input_metrics["size_bytes"]
    metrics.update(comparison_metrics(metrics, input_metrics, baseline))
    return metrics


def int8_size_metrics(source: Any, int8: Any, input_shape: tuple[int, ...], saved: Path) -> dict[str, Any]:
    """params and MACs of the float architecture, the int8 artifact's file bytes, payload bytes.

    ``size_bytes`` is the size of the int8 artifact file at ``saved`` (what the stage wrote);
    compare it with the input's artifact file (``standard_metrics(..., file_sizes=True)``).
    ``payload_bytes`` counts raw tensor bytes of the int8 state (no archive overhead, scales
    and zero points as PyTorch holds them), so ``payload_compression_vs_input`` is the ratio of
    what the weights need in memory.
    """
    from malak_pipe.compress.report import payload_bytes
    from malak_pipe.models import count_macs, count_parameters

    payload = payload_bytes(int8)
    return {
        "params": count_parameters(source),
        "macs": count_macs(source, input_shape),
        "size_bytes": file_bytes(saved),
        "payload_bytes": payload,
        "payload_compression_vs_input": payload_bytes(source) / payload,
    }


def library_config(cfg: StageConfig, config_class: type[C]) -> C:
    """The library's config object of a technique, from the stage config that extends it."""
    return config_class(**cfg.model_dump(include=set(config_class.model_fields)))


def save_int8(ctx: StageContext, data: Any, source: Any, quantizer: Any, int8: Any, input_metrics: Any = None) -> Any:
    """Save ``int8`` (quantized from ``source``) as the ``model`` output; its standard metrics.

    Sizes are artifact file against artifact file (``int8_size_metrics``); ``input_metrics``
    default to the ``model`` input's (see :func:`reference_metrics`).
    """
    from malak_pipe.compress import QuantizedModelArtifact

    if input_metrics is None:
        input_metrics = reference_metrics(ctx, "model", source.module, data)
    recipe = quantizer.recipe(source.module, data.input_shape)
    saved = ctx.save("model", QuantizedModelArtifact(source.config, recipe, int8))
    size_metrics = int8_size_metrics(source.module, int8, data.input_shape, saved)
    return standard_metrics(ctx, data, int8, size_metrics=size_metrics, input_metrics=input_metrics, file_sizes=True)


def save_float(
    ctx: StageContext,
    data: Any,
    config: ModelConfig,
    module: Any,
    input_metrics: dict[str, Any],
    size_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Save the float ``module`` of architecture ``config`` as the ``model`` output; its standard metrics.

    ``size_metrics`` default to :func:`malak_pipe.models.model_metrics` of ``module``.
    """
    from malak_pipe.models import ModelArtifact, model_metrics

    ctx.save("model", ModelArtifact(config=config, module=module))
    if size_metrics is None:
        size_metrics = model_metrics(module, data.input_shape)
    return standard_metrics(ctx, data, module, size_metrics=size_metrics, input_metrics=input_metrics)


def prune_and_finetune(ctx: StageContext, pruner: Any, module: Any, data: Any, settings: FitSettings | None) -> list:
    """Run ``pruner`` on ``module`` in place with a progress bar; the loss curve of all its fine-tuning."""
    batches = pruner.finetune_batches(len(data.train.y), settings)
    with ctx.progress(batches or None, "prune") as bar:
        results = pruner.run(module, data, settings, progress=bar)
    return [loss for result in results for loss in result.loss_curve]


def training_progress(ctx: StageContext, data: Any, settings: FitSettings, label: str) -> Any:
    """The progress bar of one fit with ``settings`` on ``data``."""
    from malak_pipe.training import total_steps

    return ctx.progress(total_steps(data, settings), label)


def fit_metrics(result: Any, settings: FitSettings) -> dict[str, Any]:
    """best_epoch, epochs, loss_curve and val_curve of a fit."""
    return {
        "best_epoch": result.best_epoch,
        "epochs": settings.epochs,
        "loss_curve": result.loss_curve,
        "val_curve": result.val_curve,
    }


def smoke_warnings(settings: FitSettings | None) -> list[str]:
    """The warning every training stage gives when its epochs were cut short."""
    if settings is not None and settings.max_batches_per_epoch is not None:
        return [f"smoke run: epochs cut to {settings.max_batches_per_epoch} batches"]
    return []
