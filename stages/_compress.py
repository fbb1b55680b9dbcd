"""What the six compression stages share: the reference metrics and the standard report.

``reference_metrics`` reads an upstream node's metrics (ctx.input_metrics) and evaluates the
upstream model itself only when they lack the accuracy figures; ``standard_metrics`` evaluates
the compressed model and adds the comparisons of :func:`malak_pipe.compress.report.comparison_metrics`
against the input model and, when the optional ``baseline`` input is wired, the FP32 baseline.
Imports torch only inside the functions.
"""

from __future__ import annotations

from typing import Any

from malak_pipe.errors import ConfigError
from malak_pipe.models.config import ModelConfig
from malak_pipe.stage import StageContext
from malak_pipe.training.settings import FitSettings

BASELINE = "baseline"


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


def standard_metrics(
    ctx: StageContext,
    data: Any,
    module: Any,
    *,
    size_metrics: dict[str, Any],
    input_metrics: dict[str, Any],
) -> dict[str, Any]:
    """val/test accuracy of ``module``, its size figures, and the drops vs input and baseline."""
    from malak_pipe.compress.report import comparison_metrics, evaluation_metrics

    metrics = {**evaluation_metrics(module, data), **size_metrics}
    metrics.update(comparison_metrics(metrics, input_metrics, baseline_metrics(ctx, data)))
    return metrics


def int8_size_metrics(source: Any, int8: Any, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """params and MACs of the float architecture, serialized and payload bytes of the int8 state.

    ``payload_bytes`` counts raw tensor bytes (no archive overhead), so
    ``payload_compression_vs_input`` is the ratio of what the weights need in memory.
    """
    from malak_pipe.compress.report import payload_bytes
    from malak_pipe.models import count_macs, count_parameters, serialized_bytes

    payload = payload_bytes(int8)
    return {
        "params": count_parameters(source),
        "macs": count_macs(source, input_shape),
        "size_bytes": serialized_bytes(int8),
        "payload_bytes": payload,
        "payload_compression_vs_input": payload_bytes(source) / payload,
    }


def check_model_matches_data(model: ModelConfig, data: Any, path: str) -> None:
    """ConfigError when a zoo model's input channels or class count disagree with the data."""
    if model.name == "factory":
        return
    expected = {"in_channels": data.input_shape[0], "num_classes": data.num_classes}
    for field, value in expected.items():
        if getattr(model, field) != value:
            raise ConfigError(
                f"{path}.{field} is {getattr(model, field)} but the dataset has {value}",
                path=f"{path}.{field}",
                hint=f"set {path}.{field}={value} or leave it to follow the data group",
            )


def finetune(module: Any, data: Any, settings: FitSettings | None, ctx: StageContext, label: str) -> Any:
    """Fine-tune ``module`` with a progress bar; None when ``settings`` is None."""
    from malak_pipe.training import fit, total_steps

    if settings is None:
        return None
    with ctx.progress(total_steps(data, settings), label) as bar:
        return fit(module, data, settings, progress=bar)


def smoke_warnings(settings: FitSettings | None) -> list[str]:
    """The warning every training stage gives when its epochs were cut short."""
    if settings is not None and settings.max_batches_per_epoch is not None:
        return [f"smoke run: epochs cut to {settings.max_batches_per_epoch} batches"]
    return []
