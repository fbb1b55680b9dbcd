"""The deployment steps on plain PyTorch objects: any ``nn.Module``, any DataLoader.

The stages hand the library tensors of an in-memory dataset; these functions take what a
user has (a DataLoader or iterable of ``(inputs, labels)`` batches, or an inputs tensor) and
call the same library code::

    from malak_pipe.deploy.api import export_onnx_checked, quantize_onnx, export_int8_onnx, profile
    onnx_fp32, parity = export_onnx_checked(model, "model.onnx", val_loader)   # parity: ParityReport
    onnx_int8 = quantize_onnx(onnx_fp32, "model_int8.onnx", train_loader)     # ORT static, QDQ
    onnx_int8 = export_int8_onnx(int8, "model_int8.onnx", train_loader)       # the torch int8 model as QDQ
    report = profile({"torch_fp32": model, "torch_int8": int8, "onnx_int8": "model_int8.onnx"}, val_loader)

Speed-ups in the profile are against the variant named ``torch_fp32``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from malak_pipe.data.batches import inputs, sample_inputs, sample_shape
from malak_pipe.deploy.artifact import OnnxModel, load_onnx
from malak_pipe.deploy.configs import OnnxExportConfig, OrtQuantConfig, ProfileConfig, TorchQDQConfig
from malak_pipe.deploy.onnx_export import ParityReport, check_parity, export_onnx, torch_logits
from malak_pipe.deploy.ort_runtime import OrtPredictor
from malak_pipe.deploy.torch_int8 import quantized_engine


def export_onnx_checked(
    model: Any, path: Path | str, data: Any, config: OnnxExportConfig = OnnxExportConfig()
) -> tuple[OnnxModel, ParityReport]:
    """Export ``model`` to ONNX at ``path`` and check it against PyTorch in ONNX Runtime.

    The input shape and the parity batch (``config.parity_samples`` inputs) come from
    ``data``; StageFailed names the worst sample when a logit differs by more than
    ``config.parity_atol``.
    """
    x = sample_inputs(data, config.parity_samples).float().numpy()
    exported = export_onnx(model, tuple(x.shape[1:]), path, config)
    predictor = OrtPredictor(path, threads=config.eval_threads)
    parity = check_parity(torch_logits(model, x), predictor(x), atol=config.parity_atol, path=str(path))
    return exported, parity


def quantize_onnx(
    fp32: OnnxModel | Path | str,
    path: Path | str,
    data: Any,
    config: OrtQuantConfig = OrtQuantConfig(),
    *,
    qoperator_path: Path | str | None = None,
) -> OnnxModel:
    """ONNX Runtime static int8 quantization (QDQ) of ``fp32``, calibrated on the first
    ``config.calibration_batches`` batches of ``data`` (the QOperator twin too when
    ``qoperator_path`` is given)."""
    from malak_pipe.deploy.onnx_quant import quantize_ort_static

    model = fp32 if isinstance(fp32, OnnxModel) else load_onnx(fp32)
    batches = [x.float().numpy() for x in inputs(data, max_batches=config.calibration_batches)]
    qdq, _ = quantize_ort_static(model, batches, path, config, qoperator_path=qoperator_path)
    return qdq


def export_int8_onnx(
    int8: Any, path: Path | str, data: Any, config: TorchQDQConfig = TorchQDQConfig(), *, backend: str | None = None
) -> OnnxModel:
    """The torch int8 model (from StaticPTQ or QAT) as an equivalent QDQ ONNX file.

    ``config.calibration_batch_size`` inputs of ``data`` are run once to read the activation
    quantization; ``backend`` is the quantized engine the model was converted for (None: the
    current one).
    """
    from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq

    sample = sample_inputs(data, config.calibration_batch_size).float()
    with quantized_engine(backend):
        return export_torch_int8_qdq(int8, tuple(sample.shape[1:]), path, config, calibration_sample=sample)


def _variant(name: str, model: Any, engine: str | None) -> Any:
    from malak_pipe.deploy.profiler import ModelVariant

    if isinstance(model, OnnxModel):
        return ModelVariant(name, "onnx", model.path)
    if isinstance(model, (str, Path)):
        return ModelVariant(name, "onnx", load_onnx(model).path)
    quantized = any(getattr(value, "is_quantized", False) for value in model.state_dict().values())
    return ModelVariant(name, "torch", model, engine=engine if quantized else None)


def profile(
    models: Mapping[str, Any],
    data: Any,
    config: ProfileConfig = ProfileConfig(),
    *,
    engine: str | None = None,
) -> dict[str, Any]:
    """Latency of every model (``name -> nn.Module | ONNX path | OnnxModel``) and, with
    ``config.per_layer``, its per-layer table.

    ``data`` gives the input shape (a DataLoader, a tensor of inputs, or the shape itself as a
    tuple of ints); every model is timed on the same random batch at every (batch size,
    threads) setting of ``config``. ``engine``: the quantized engine of int8 torch models.
    Returns ``{"latency": [row, ...], "per_layer": {name: [layer, ...]}}``.
    """
    from malak_pipe.deploy.profiler import layer_tables, profile_variants

    variants = [_variant(name, model, engine) for name, model in models.items()]
    shape = _shape(data)
    rows = [row.as_dict() for row in profile_variants(variants, shape, config)]
    return {"latency": rows, "per_layer": layer_tables(variants, shape, config) if config.per_layer else {}}


def _shape(data: Any) -> tuple[int, ...]:
    if isinstance(data, Sequence) and data and all(isinstance(d, int) for d in data):
        return tuple(data)
    return sample_shape(data)
