"""The ``export_onnx`` stage: the FP32 torch model to one self-contained ONNX file, checked.

The exporter is ``torch.onnx.export(dynamo=True)`` (see :mod:`malak_pipe.deploy.onnx_export`
for why); batch-norm layers are folded into the convolutions and none may remain. The file
passes ``onnx.checker``; then ONNX Runtime runs a held-out batch from the val split and the
stage fails, naming the worst sample and output, when a logit differs from PyTorch by more
than ``parity_atol``. Finally the test split is evaluated in ONNX Runtime.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.deploy.configs import OnnxExportConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult


class ExportONNXConfig(StageConfig, OnnxExportConfig):
    """The fields of :class:`malak_pipe.deploy.configs.OnnxExportConfig`."""


def parity_batch(data: Any, n: int) -> Any:
    """The first ``n`` images of the val split (the test split when val is empty)."""
    split = data.val if len(data.val) else data.test
    return split.x[:n].numpy()


class ExportONNX(Stage):
    """Export to ONNX, check parity with PyTorch in ONNX Runtime, evaluate the test split."""

    name = "export_onnx"
    version = 1
    Config = ExportONNXConfig
    inputs = {"model": "torch_model", "data": "dataset"}
    outputs = {"model": "onnx_model"}
    description = "export the FP32 model to ONNX (BN folded) and check parity in ONNX Runtime"
    summary = {"test_top1": "top1 {:.2%}", "size_bytes": "{:bytes}", "parity_max_abs_diff": "parity {:.1e}"}

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.deploy.onnx_export import check_parity, export_onnx, torch_logits
        from malak_pipe.deploy.ort_runtime import OrtPredictor, top1

        cfg = cast(ExportONNXConfig, cfg)
        artifact, data = ctx.load("model"), ctx.load("data")
        with ctx.output_path("model") as path:
            model = export_onnx(artifact.module, tuple(data.input_shape), path, cfg)
            predictor = OrtPredictor(path, threads=cfg.eval_threads)
            x = parity_batch(data, cfg.parity_samples)
            parity = check_parity(
                torch_logits(artifact.module, x), predictor(x), atol=cfg.parity_atol, path=f"{ctx.node}: {path.name}"
            )
            test_logits = predictor(data.test.x.numpy())
            size, opset, ops = model.size_bytes, model.opset, sorted(set(model.op_types))
        test_top1 = top1(test_logits, data.test.y.numpy())
        ctx.log(f"opset {opset}, {size} bytes, parity max |diff| {parity.max_abs_diff:.2e}, test {test_top1:.4f}")
        return StageResult(
            metrics={
                "parity_max_abs_diff": parity.max_abs_diff,
                "parity_mean_abs_diff": parity.mean_abs_diff,
                "parity_top1_agreement": parity.top1_agreement,
                "parity_samples": parity.n,
                "onnx_bytes": size,
                "size_bytes": size,
                "opset": opset,
                "op_types": ops,
                "test_top1": test_top1,
                "exporter": "torch.onnx.export(dynamo=True)",
            }
        )
