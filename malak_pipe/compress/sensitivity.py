"""Per-layer sensitivity to 4-bit weights, measured on the val split.

One static PTQ calibration (train batches) serves every measurement: the calibrated model is
converted once all-int8 (the reference) and once per (layer, clip) with that layer alone at 4
bits (:meth:`StaticPTQ.with_weight_bits` sets the weight observers at conversion). For each:
val top-1 and its drop against the int8 reference (percentage points, positive = worse), the
KL divergence of the output distribution (int8 || layer at 4 bits) averaged over the first val
batches, and the relative squared error of the layer's weights. Nothing here reads test.

    table = measure_sensitivity(model, data, StaticPTQConfig(), SensitivityConfig())
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from malak_pipe.compress import _quant_backend as backend
from malak_pipe.compress.configs import StaticPTQConfig
from malak_pipe.compress.precision import SensitivityConfig, WeightBitsConfig
from malak_pipe.compress.quantize import StaticPTQ
from malak_pipe.compress.weight_quant import check_layer_names, weight_error, weight_layers


def _val_batches(data: Any, config: SensitivityConfig) -> list[torch.Tensor]:
    x = data.val.x[: config.kl_batches * config.kl_batch_size]
    return list(torch.split(x, config.kl_batch_size))


@torch.inference_mode()
def _log_probs(module: nn.Module, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    module.eval()
    return [F.log_softmax(module(x), dim=1) for x in batches]


def output_kl(reference: list[torch.Tensor], other: list[torch.Tensor]) -> float:
    """Mean over images of KL(p_reference || p_other), from log-probabilities."""
    total = sum(float((ref.exp() * (ref - oth)).sum()) for ref, oth in zip(reference, other, strict=True))
    return total / max(1, sum(len(ref) for ref in reference))


def measure_sensitivity(
    model: nn.Module, data: Any, ptq: StaticPTQConfig, config: SensitivityConfig, *, progress: Any = None
) -> dict[str, Any]:
    """The sensitivity table of ``model``: ``{"int8_val_top1", "layers": [row, ...]}``.

    A row: layer, kind, params, weight_shape, groups, clip, val_top1, val_drop_pp, kl,
    weight_error (one per layer and clip, layers in module order).
    """
    from malak_pipe.training import evaluate

    layers = weight_layers(model)
    if config.layers:
        check_layer_names(model, config.layers, "layers")
        layers = [layer for layer in layers if layer.name in config.layers]
    quantizer = StaticPTQ(ptq)
    prepared = quantizer.prepare(model)
    quantizer.calibrate(prepared, quantizer.calibration_batches(data))
    int8 = quantizer.convert(prepared)
    batches = _val_batches(data, config)
    reference, int8_val = _log_probs(int8, batches), evaluate(int8, data, "val").top1
    rows = []
    for layer in layers:
        for clip in config.clips:
            bits = WeightBitsConfig(
                layers={layer.name: 4}, clip=clip, clip_grid=config.clip_grid, clip_floor=config.clip_floor
            )
            module = quantizer.with_weight_bits(bits).convert(prepared)
            val = evaluate(module, data, "val").top1
            dequantized = module.get_submodule(layer.name).weight().dequantize()
            rows.append(
                {
                    "layer": layer.name,
                    "kind": layer.kind,
                    "params": layer.params,
                    "weight_shape": list(layer.weight_shape),
                    "groups": layer.groups,
                    "clip": clip,
                    "val_top1": val,
                    "val_drop_pp": 100.0 * (int8_val - val),
                    "kl": output_kl(reference, _log_probs(module, batches)),
                    "weight_error": weight_error(backend.float_weight(prepared, layer.name), dequantized),
                }
            )
            if progress is not None:
                progress.advance()
    return {"int8_val_top1": int8_val, "val_images": len(data.val.y), "layers": rows}
