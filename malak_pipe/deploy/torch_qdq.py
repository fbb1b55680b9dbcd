"""Export a torch.ao int8 model (FX graph mode, static PTQ or QAT) to an equivalent ONNX QDQ graph.

No ONNX exporter translates the int8 kernels of a converted ``GraphModule``, so the export
goes through its fake-quant twin (:mod:`malak_pipe.deploy.fake_quant_twin`): a float graph with
the int8 model's own scales and zero points, which the dynamo exporter writes as
``QuantizeLinear -> DequantizeLinear`` pairs. :func:`malak_pipe.deploy.qdq_finalize.finalize_qdq`
then stores weights as int8 initializers (INT4 for 4-bit layers) and biases as int32, the layout
ORT's quantizer writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from malak_pipe.deploy.artifact import OnnxModel, load_onnx
from malak_pipe.deploy.configs import OnnxExportConfig, TorchQDQConfig


def export_torch_int8_qdq(
    int8_module: Any,
    sample_shape: tuple[int, ...],
    path: Path | str,
    config: TorchQDQConfig = TorchQDQConfig(),
    *,
    calibration_sample: Any = None,
    int4_layers: Iterable[str] = (),
) -> OnnxModel:
    """Write the QDQ ONNX equivalent of a torch.ao FX int8 model at ``path``.

    Activations are ``config.activation_type``; the graph's opset and input batch follow
    ``config`` (opset 21 at least when ``int4_layers``, the recipe's 4-bit layers, store INT4
    weights). ``calibration_sample`` (a float tensor of real-shaped data) is run once to read
    the activation qparams; zeros of ``sample_shape`` are used when it is None.
    """
    import torch

    from malak_pipe.deploy.fake_quant_twin import fake_quant_twin
    from malak_pipe.deploy.onnx_export import export_onnx
    from malak_pipe.deploy.qdq_finalize import finalize_qdq

    sample = calibration_sample if calibration_sample is not None else torch.zeros((1, *sample_shape))
    twin = fake_quant_twin(int8_module, sample, activation_type=config.activation_type)
    export_onnx(twin, sample_shape, path, OnnxExportConfig.of(config, require_bn_folded=True))
    finalize_qdq(path, int4_layers)
    return load_onnx(path)
