"""The ``quantize_onnx`` stage: the portable int8 ONNX model (QDQ) and an ORT speed variant (QOperator).

Two routes (``source``):

- ``ort_static``: ONNX Runtime static quantization of the FP32 ONNX model (input ``model``),
  calibrated on batches of the TRAIN split (minmax, entropy or percentile).
- ``torch_int8``: the project's own torch int8 model (input ``model_int8``, from ptq_static or
  qat) written as an equivalent QDQ graph with its own scales and zero points.

Outputs: ``model`` (QDQ: int8 per-channel symmetric weights, int32 biases, per-tensor
activations; what the firmware code generator reads) and ``model_qop`` (QLinearConv/QGemm...,
uint8 activations x int8 weights: ORT-only, the fast one on x86). Both are evaluated in ONNX
Runtime on the test split and compared with the FP32 ONNX model and the torch int8 model
when those are wired (``model``; ``torch_int8`` or ``model_int8``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from malak_pipe.deploy.configs import OrtEvalConfig, OrtQuantConfig, TorchQDQConfig
from malak_pipe.errors import ConfigError
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult


class QuantizeONNXConfig(StageConfig, OrtQuantConfig, TorchQDQConfig, OrtEvalConfig):
    """The route, and the fields of the deploy configs of both routes and of the evaluation.

    ``source`` ort_static uses :class:`malak_pipe.deploy.configs.OrtQuantConfig`, torch_int8
    :class:`malak_pipe.deploy.configs.TorchQDQConfig`; ``eval_threads`` runs the evaluation.
    """

    source: Literal["ort_static", "torch_int8"] = "ort_static"


def per_class_top1(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> list[float | None]:
    """Accuracy per class (None for a class without samples)."""
    predicted = logits.argmax(axis=1)
    result: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        result.append(float((predicted[mask] == c).mean()) if mask.any() else None)
    return result


class QuantizeONNX(Stage):
    """Write the int8 QDQ ONNX model (and its QOperator twin) and evaluate both in ONNX Runtime."""

    name = "quantize_onnx"
    version = 1
    Config = QuantizeONNXConfig
    inputs = {
        "model": "onnx_model",
        "data": "dataset",
        "model_int8": "torch_model_int8",
        "torch_int8": "torch_model_int8",
    }
    optional_inputs = frozenset({"model", "model_int8", "torch_int8"})
    outputs = {"model": "onnx_model_int8", "model_qop": "onnx_model_int8"}
    description = "int8 ONNX (QDQ, portable; QOperator, fast in ORT) by ORT static PTQ or from the torch int8 model"
    summary = {
        "test_top1": "top1 {:.2%}",
        "size_bytes": "{:bytes}",
        "agreement_with_torch_int8_top1": "agrees w/ torch int8 {:.2%}",
    }

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        cfg = cast(QuantizeONNXConfig, cfg)
        data = ctx.load("data")
        needed = "model" if cfg.source == "ort_static" else "model_int8"
        if not ctx.has_input(needed):
            kind = "an export_onnx node's model" if needed == "model" else "a ptq_static/qat node's model"
            raise ConfigError(
                f"source '{cfg.source}' needs the input '{needed}'",
                path=f"pipeline.{ctx.node}.inputs.{needed}",
                hint=f"wire {needed}: <node>.model ({kind})",
            )
        with ctx.output_path("model") as qdq_path, ctx.output_path("model_qop") as qop_path:
            if cfg.source == "ort_static":
                details = self._ort_static(cfg, ctx, data, qdq_path, qop_path)
            else:
                details = self._from_torch(cfg, ctx, data, qdq_path, qop_path)
            metrics = self._evaluate(cfg, ctx, data, qdq_path, qop_path)
        metrics.update(details)
        ctx.log(
            f"{cfg.source}: test {metrics['test_top1']:.4f}, {metrics['size_bytes']} bytes"
            + (f", x{metrics['compression_vs_fp32_onnx']:.2f} smaller" if "compression_vs_fp32_onnx" in metrics else "")
        )
        return StageResult(metrics=metrics)

    @staticmethod
    def _ort_static(cfg: QuantizeONNXConfig, ctx: StageContext, data: Any, qdq: Path, qop: Path) -> dict[str, Any]:
        from malak_pipe.deploy.onnx_quant import quantize_ort_static

        batches = [
            b.numpy()
            for b in data.calibration_batches(cfg.calibration_batches, cfg.calibration_batch_size, seed=cfg.seed)
        ]
        quantize_ort_static(ctx.load("model"), batches, qdq, cfg, qoperator_path=qop)
        return {
            "source": "ort_static",
            "calibration_samples": int(sum(len(b) for b in batches)),
            "calibrate_method": cfg.calibrate_method,
        }

    @staticmethod
    def _from_torch(cfg: QuantizeONNXConfig, ctx: StageContext, data: Any, qdq: Path, qop: Path) -> dict[str, Any]:
        from malak_pipe.deploy.onnx_quant import qoperator_from_qdq
        from malak_pipe.deploy.torch_int8 import engine_of, quantized_engine
        from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq

        artifact = ctx.load("model_int8")
        sample = data.calibration_batches(1, cfg.calibration_batch_size, seed=cfg.seed)[0]
        shape = tuple(data.input_shape)
        export = {"calibration_sample": sample, "int4_layers": artifact.recipe.weight_bits}
        with quantized_engine(engine_of(artifact)), tempfile.TemporaryDirectory(prefix="malak-qop-") as tmp:
            export_torch_int8_qdq(artifact.module, shape, qdq, cfg, **export)
            staging = qdq
            if cfg.qoperator_activation_type != cfg.activation_type:  # the QOperator twin wants other types
                staging = Path(tmp) / "qdq_for_qop.onnx"
                qop_config = TorchQDQConfig.of(cfg, activation_type=cfg.qoperator_activation_type)
                export_torch_int8_qdq(artifact.module, shape, staging, qop_config, **export)
            qoperator_from_qdq(staging, qop)
        return {
            "source": "torch_int8",
            "torch_int8_backend": engine_of(artifact),
            "int4_layers": sorted(artifact.recipe.weight_bits),
        }

    @staticmethod
    def _evaluate(cfg: QuantizeONNXConfig, ctx: StageContext, data: Any, qdq: Path, qop: Path) -> dict[str, Any]:
        from malak_pipe.deploy.ort_runtime import OrtPredictor, agreement, top1
        from malak_pipe.deploy.torch_int8 import int8_logits

        x, y = data.test.x.numpy(), data.test.y.numpy()
        logits = OrtPredictor(qdq, threads=cfg.eval_threads)(x)
        qop_logits = OrtPredictor(qop, threads=cfg.eval_threads)(x)
        metrics: dict[str, Any] = {
            "test_top1": top1(logits, y),
            "test_per_class_top1": per_class_top1(logits, y, data.num_classes),
            "size_bytes": qdq.stat().st_size,
            "qop_test_top1": top1(qop_logits, y),
            "qop_size_bytes": qop.stat().st_size,
            "qop_agreement_with_qdq_top1": agreement(qop_logits, logits),
            "n_test": len(y),
        }
        if ctx.has_input("model"):
            fp32 = ctx.load("model")
            fp32_logits = OrtPredictor(fp32.path, threads=cfg.eval_threads)(x)
            metrics["fp32_onnx_test_top1"] = top1(fp32_logits, y)
            metrics["agreement_with_fp32_top1"] = agreement(logits, fp32_logits)
            metrics["compression_vs_fp32_onnx"] = fp32.size_bytes / metrics["size_bytes"]
            metrics["test_top1_drop_vs_fp32_onnx_pp"] = 100 * (metrics["fp32_onnx_test_top1"] - metrics["test_top1"])
        torch_input = "torch_int8" if ctx.has_input("torch_int8") else "model_int8"
        if ctx.has_input(torch_input):
            torch_logits = int8_logits(ctx.load(torch_input), x)
            metrics["torch_int8_test_top1"] = top1(torch_logits, y)
            metrics["agreement_with_torch_int8_top1"] = agreement(logits, torch_logits)
            metrics["qop_agreement_with_torch_int8_top1"] = agreement(qop_logits, torch_logits)
        return metrics
