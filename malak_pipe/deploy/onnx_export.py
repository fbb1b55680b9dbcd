"""Export a float PyTorch model to ONNX, and check the file against PyTorch in ONNX Runtime.

The exporter is ``torch.onnx.export(..., dynamo=True)``: on torch >= 2.9 it is the default
and the TorchScript exporter is deprecated ("will be removed"). It traces with
``torch.export``, translates through onnxscript and runs onnxscript's optimiser, which folds
every eval-mode BatchNorm that follows a convolution into the convolution's weights and bias.
:func:`export_onnx` then verifies that no ``BatchNormalization`` node is left.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.deploy.artifact import OnnxModel, load_onnx
from malak_pipe.deploy.configs import OnnxExportConfig
from malak_pipe.errors import StageFailed

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@contextlib.contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    """Raise the named loggers to ERROR and drop warnings and stdout prints inside the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def quiet_exporter() -> contextlib.AbstractContextManager[None]:
    """Silence the exporter's progress prints, deprecation warnings and torchvision notices."""
    return quiet_logs("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")


def export_onnx(
    module: Any,
    sample_shape: tuple[int, ...],
    path: Path | str,
    config: OnnxExportConfig = OnnxExportConfig(),
) -> OnnxModel:
    """Write ``module`` (eval mode, float32) to ``path`` as one self-contained ONNX file.

    The input is ``input`` of shape ``(config.batch_size, *sample_shape)``, frozen unless
    ``config.dynamic_batch`` (then the batch axis is symbolic); the output is ``logits``. The
    file passes ``onnx.checker``; with ``config.require_bn_folded`` a remaining
    BatchNormalization node raises :class:`StageFailed`.
    """
    import torch

    module = module.eval()
    path = Path(path)
    batch_size, dynamic_batch = config.batch_size, config.dynamic_batch
    example_batch = max(batch_size, 2) if dynamic_batch else batch_size
    example = torch.zeros((example_batch, *sample_shape), dtype=torch.float32)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=65536)},) if dynamic_batch else None
    try:
        with torch.no_grad(), quiet_exporter():
            program = torch.onnx.export(
                module,
                (example,),
                None,
                dynamo=True,
                opset_version=config.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises a wide range of errors for untraceable models
        raise StageFailed(
            f"torch.onnx.export (dynamo) failed for {type(module).__name__}: {str(exc).strip()[:800]}",
            hint="the model's forward must be traceable by torch.export (no data-dependent Python control flow)",
        ) from None
    import onnx

    onnx.save_model(program.model_proto, str(path), save_as_external_data=False)
    model = load_onnx(path)
    if config.require_bn_folded and "BatchNormalization" in model.op_types:
        count = model.op_types.count("BatchNormalization")
        raise StageFailed(
            f"{count} BatchNormalization node(s) remain in the exported graph (not folded into a conv)",
            path=str(path),
            hint="put every BatchNorm directly after a Conv, or set require_bn_folded: false",
        )
    return model


@dataclass(frozen=True)
class ParityReport:
    """How closely ONNX Runtime reproduces PyTorch on one batch."""

    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    worst_sample: int
    worst_output: int
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Element-wise comparison of two logit arrays of the same shape (N x classes)."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise StageFailed(f"output shapes differ: PyTorch {reference.shape} vs ONNX Runtime {candidate.shape}")
    diff = np.abs(reference - candidate)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else (0, 0)
    agree = float((reference.argmax(axis=1) == candidate.argmax(axis=1)).mean()) if len(diff) else float("nan")
    return ParityReport(
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        top1_agreement=agree,
        worst_sample=int(worst[0]),
        worst_output=int(worst[1]) if len(worst) > 1 else 0,
        n=len(diff),
    )


def torch_logits(module: Any, x: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Logits of a torch module on a float32 array, computed in chunks under ``no_grad``."""
    import torch

    module = module.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            batch = torch.as_tensor(np.ascontiguousarray(x[start : start + chunk], dtype=np.float32))
            outputs.append(module(batch).float().numpy())
    return np.concatenate(outputs)


def check_parity(reference: np.ndarray, candidate: np.ndarray, *, atol: float, path: str | None = None) -> ParityReport:
    """:func:`compare_logits`, raising :class:`StageFailed` naming the worst sample when over ``atol``."""
    report = compare_logits(reference, candidate)
    if not report.max_abs_diff <= atol:  # also catches NaN
        raise StageFailed(
            f"ONNX Runtime differs from PyTorch by {report.max_abs_diff:.3g} (tolerance {atol:g}) at "
            f"sample {report.worst_sample}, output {report.worst_output} "
            f"(PyTorch {reference[report.worst_sample, report.worst_output]:.6g}, "
            f"ONNX Runtime {candidate[report.worst_sample, report.worst_output]:.6g}); "
            f"top-1 agreement {report.top1_agreement:.4f} over {report.n} samples",
            path=path,
            hint="raise parity_atol if the model is numerically sensitive, or report an exporter bug",
        )
    return report
