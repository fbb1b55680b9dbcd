"""ONNX Runtime static quantization of a float ONNX model (QDQ, and optionally QOperator).

The QDQ file is the project's portable int8 artifact: weights int8 symmetric per-channel for
Conv/Gemm/MatMul, biases int32 (scale = input scale x weight scale), activations per-tensor
asymmetric, uint8 by default: ORT runs U8S8 about 3x faster than S8S8 on MobileNetV2's
depthwise convolutions on this x86 CPU, and uint8 -> int8 is exact for Cortex-M kernels
(q - 128, zero point - 128: the MCU lowering does it). ``activation_type="int8"`` writes int8.
The QOperator variant (QLinearConv, QGemm..., uint8 activations x int8 weights) is an
ORT-only format that needs no QDQ fusion at load time.

Both are produced from one calibration pass over batches of the TRAIN split.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.deploy.artifact import OnnxModel, load_onnx
from malak_pipe.deploy.configs import OrtQuantConfig
from malak_pipe.deploy.onnx_export import quiet_logs
from malak_pipe.errors import ConfigError, StageFailed


def chunk_for_model(batches: Iterable[np.ndarray], fixed_batch: int | None) -> Iterator[np.ndarray]:
    """Re-cut calibration batches to a model's frozen batch size (dropping a short remainder).

    With a dynamic batch axis (``fixed_batch`` None) the batches pass through unchanged.
    """
    if fixed_batch is None:
        yield from (np.ascontiguousarray(b, dtype=np.float32) for b in batches)
        return
    pending: list[np.ndarray] = []
    count = 0
    for batch in batches:
        pending.append(np.asarray(batch, dtype=np.float32))
        count += len(batch)
        while count >= fixed_batch:
            stacked = np.concatenate(pending)
            yield np.ascontiguousarray(stacked[:fixed_batch])
            rest = stacked[fixed_batch:]
            pending, count = ([rest] if len(rest) else []), len(rest)


def _calibration_reader(input_name: str, arrays: list[np.ndarray]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter = iter(arrays)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._iter, None)
            return None if item is None else {input_name: item}

        def __len__(self) -> int:
            return len(arrays)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._iter = iter(arrays[start_index:end_index])

    return _Reader()


def _input_meta(model: OnnxModel) -> tuple[str, int | None]:
    graph_input = model.proto.graph.input[0]
    dim = graph_input.type.tensor_type.shape.dim[0]
    fixed = dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None
    return graph_input.name, fixed


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


def _calibrate_method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if name not in methods:
        raise ConfigError(f"unknown calibrate_method '{name}'", hint=f"use one of {sorted(methods)}")
    return methods[name]


def preprocess(fp32_path: Path | str, out_path: Path | str) -> Path:
    """ORT's ``quant_pre_process``: symbolic shape inference and graph optimisation before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with quiet_logs("onnxruntime"):
            quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    except Exception as exc:  # shape inference raises many kinds
        raise StageFailed(
            f"onnxruntime quant_pre_process failed: {type(exc).__name__}: {str(exc)[:400]}", path=str(fp32_path)
        ) from None
    return Path(out_path)


def _entropy_calibration(prepared: Path, reader: Any, cache: Path, bins: int) -> None:
    """Entropy (KL) calibration with ``bins`` histogram bins, written to ORT's calibration cache.

    ``quantize_static`` cannot pass a bin count to its entropy calibrator, whose default (128
    histogram bins for 128 quantized bins) leaves nothing to clip: ranges equal min/max. So the
    ranges are computed here, as TensorRT does (2048 bins), and quantize_static reads them back.
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    calibrator = create_calibrator(
        prepared,
        augmented_model_path=str(cache.parent / "augmented.onnx"),
        calibrate_method=CalibrationMethod.Entropy,
        extra_options={"symmetric": False, "num_bins": bins, "num_quantized_bins": 128},
    )
    with quiet_logs("onnxruntime"):
        calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), cache)


def quantize_ort_static(
    fp32: OnnxModel,
    calibration: Iterable[np.ndarray],
    qdq_path: Path | str,
    config: OrtQuantConfig = OrtQuantConfig(),
    *,
    qoperator_path: Path | str | None = None,
) -> tuple[OnnxModel, OnnxModel | None]:
    """Quantize ``fp32`` to QDQ at ``qdq_path`` (and QOperator at ``qoperator_path``) as ``config`` says.

    ``calibration`` yields float32 arrays (N x C x H x W) taken from the TRAIN split; they are
    re-cut to the model's frozen batch size. Returns the loaded, checked models.
    """
    from onnxruntime.quantization import QuantFormat, quantize_static

    input_name, fixed_batch = _input_meta(fp32)
    arrays = list(chunk_for_model(calibration, fixed_batch))
    if not arrays:
        raise StageFailed(
            "no calibration data: the calibration batches are empty or smaller than the model's batch",
            hint="raise calibration_batches / calibration_batch_size",
        )
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True, "QuantizeBias": True}
    if config.calibrate_method == "percentile":
        extra["CalibPercentile"] = config.percentile
    with tempfile.TemporaryDirectory(prefix="malak-quant-") as tmp:
        prepared = preprocess(fp32.path, Path(tmp) / "prepared.onnx")
        cache = Path(tmp) / "calibration.json"
        common = {
            "per_channel": config.per_channel,
            "reduce_range": config.reduce_range,
            "weight_type": _quant_type("int8"),
            "calibrate_method": _calibrate_method(config.calibrate_method),
            "calibration_cache_path": cache,
        }
        if config.calibrate_method == "entropy":
            _entropy_calibration(prepared, _calibration_reader(input_name, arrays), cache, config.entropy_bins)
        runs = [(qdq_path, QuantFormat.QDQ, config.activation_type)]
        if qoperator_path is not None:
            runs.append((qoperator_path, QuantFormat.QOperator, config.qoperator_activation_type))
        for out_path, fmt, act in runs:
            try:
                with quiet_logs("onnxruntime"):
                    quantize_static(
                        str(prepared),
                        str(out_path),
                        _calibration_reader(input_name, arrays),
                        quant_format=fmt,
                        activation_type=_quant_type(act),
                        extra_options=dict(extra),
                        **common,
                    )
            except (ValueError, RuntimeError, KeyError) as exc:
                raise StageFailed(
                    f"onnxruntime quantize_static ({fmt.name}) failed: {type(exc).__name__}: {str(exc)[:400]}",
                    path=str(fp32.path),
                ) from None
    qdq = load_onnx(qdq_path)
    qop = load_onnx(qoperator_path) if qoperator_path is not None else None
    return qdq, qop


def qoperator_from_qdq(qdq_path: Path | str, out_path: Path | str) -> OnnxModel:
    """ORT's own QDQ -> QLinearConv/QGemm/QLinearAdd fusion, saved offline (ORT-only operators).

    Uses the EXTENDED optimisation level, which fuses quantized operators but keeps the
    standard NCHW layout (the ALL level would write machine-specific NCHWc kernels).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out_path)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(qdq_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception classes
        raise StageFailed(
            f"ONNX Runtime could not fuse the QDQ model into QOperator form: {str(exc)[:400]}", path=str(qdq_path)
        ) from None
    return load_onnx(out_path)
