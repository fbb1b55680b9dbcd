"""The standard metrics of a compressed model and its comparison with the input and baseline.

Every compression stage reports the same names (docs/CONTRACTS.md): accuracy on val and test,
per-class test accuracy, params/MACs/size, and drops against the model it compressed
("input") and the FP32 model of the train node ("baseline"). Accuracies are fractions in
[0, 1]; drops are percentage points (positive = the compressed model is worse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def evaluation_metrics(module: Any, data: Any) -> dict[str, Any]:
    """val_top1 (None without a val split), test_top1, test_loss, test_per_class_top1."""
    from malak_pipe.training import evaluate

    test = evaluate(module, data, "test")
    val_top1 = evaluate(module, data, "val").top1 if len(data.val.y) else None
    return {
        "val_top1": val_top1,
        "test_top1": test.top1,
        "test_loss": test.loss,
        "test_per_class_top1": test.per_class_top1,
    }


def max_class_drop(before: Sequence[float | None], after: Sequence[float | None]) -> tuple[float, int] | None:
    """(largest per-class accuracy drop in pp, its class index); None when nothing compares."""
    drops = [
        ((old - new) * 100.0, index)
        for index, (old, new) in enumerate(zip(before, after, strict=False))
        if old is not None and new is not None
    ]
    if not drops:
        return None
    return max(drops, key=lambda pair: (pair[0], -pair[1]))


def _against(metrics: Mapping[str, Any], reference: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if reference.get("test_top1") is not None and metrics.get("test_top1") is not None:
        out[f"test_top1_drop_vs_{suffix}_pp"] = (reference["test_top1"] - metrics["test_top1"]) * 100.0
    if reference.get("size_bytes") and metrics.get("size_bytes"):
        out[f"compression_vs_{suffix}"] = reference["size_bytes"] / metrics["size_bytes"]
    before, after = reference.get("test_per_class_top1"), metrics.get("test_per_class_top1")
    if before and after:
        drop = max_class_drop(before, after)
        if drop is not None:
            name = "max_class_drop" if suffix == "input" else f"max_class_drop_vs_{suffix}"
            out[f"{name}_pp"], out[f"{name}_class"] = drop
    return out


def comparison_metrics(
    metrics: Mapping[str, Any],
    input_metrics: Mapping[str, Any] | None,
    baseline_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Drops and compression of ``metrics`` against the input model and the FP32 baseline.

    Against the input: test_top1_drop_vs_input_pp, compression_vs_input, max_class_drop_pp and
    max_class_drop_class. Against the baseline (when given): test_top1_drop_vs_baseline_pp,
    compression_vs_baseline (baseline size_bytes / size_bytes), max_class_drop_vs_baseline_pp
    and max_class_drop_vs_baseline_class. A figure whose inputs are missing is left out.
    """
    out = _against(metrics, input_metrics or {}, "input")
    if baseline_metrics:
        out.update(_against(metrics, baseline_metrics, "baseline"))
    return out


def latency_ms(module: Any, input_shape: Sequence[int], *, batch_size: int = 1, repeats: int = 30) -> float:
    """Median wall time in milliseconds of one forward pass on a batch of zeros (eval mode).

    Five warm-up passes run first. A median of ``repeats`` is robust to the odd slow pass on a
    shared machine; compare only figures measured in the same process and thread setting.
    """
    import time

    import torch

    was_training = module.training
    module.eval()
    batch = torch.zeros((batch_size, *input_shape))
    times = []
    try:
        with torch.inference_mode():
            for _ in range(5):
                module(batch)
            for _ in range(repeats):
                started = time.perf_counter()
                module(batch)
                times.append((time.perf_counter() - started) * 1000.0)
    finally:
        module.train(was_training)
    times.sort()
    return times[len(times) // 2]


def artifact_bytes(artifact_type: Any, artifact: Any) -> int:
    """Bytes of the file ``artifact_type.save`` writes for ``artifact`` (written in memory).

    The size of the artifact as the pipeline stores it: for ``torch_model`` the float
    checkpoint, for ``torch_model_int8`` the packed int8 checkpoint. Compression ratios compare
    these file sizes, like with like.
    """
    import io

    buffer = io.BytesIO()
    artifact_type.save(artifact, buffer)
    return buffer.getbuffer().nbytes


def payload_bytes(module: Any) -> int:
    """Raw bytes of every tensor in ``module``'s state, without any container overhead.

    Int8 weights count one byte per element plus their quantization parameters as PyTorch
    stores them (per-channel: a float64 scale and an int64 zero point per channel). Unlike
    ``size_bytes`` (a ``torch.save`` archive, ~200 bytes of zip and pickle overhead per stored
    tensor), this is the memory the weights need on a device.
    """
    import torch

    total = 0
    for value in module.state_dict().values():
        for tensor in value if isinstance(value, tuple) else (value,):
            if not torch.is_tensor(tensor):
                continue
            total += tensor.numel() * tensor.element_size()
            if tensor.is_quantized and tensor.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                total += tensor.q_per_channel_scales().numel() * 16
            elif tensor.is_quantized:
                total += 16
    return total
