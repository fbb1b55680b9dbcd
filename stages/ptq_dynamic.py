"""The ``ptq_dynamic`` stage: int8 weights for Linear/LSTM/GRU layers, no calibration.

Dynamic quantization converts only layers with dynamic int8 kernels (Linear, LSTM, GRU); on
conv nets they hold little of the weights, so the stage reports
``quantizable_param_fraction`` and warns when it is small (use ptq_static or qat there).
Size is the bytes of the int8 artifact file the stage writes (``size_bytes``) and
``compression_vs_input`` the ratio of the input model's artifact file to it.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import DynamicPTQConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult

from ._compress import COMPRESSION_SUMMARY, library_config, save_int8

LOW_FRACTION = 0.5


class PTQDynamicConfig(StageConfig, DynamicPTQConfig):
    """The fields of :class:`malak_pipe.compress.DynamicPTQConfig` (backend, layers)."""


class PTQDynamic(Stage):
    """Dynamic post-training quantization of Linear/LSTM/GRU weights to int8."""

    name = "ptq_dynamic"
    version = 2
    Config = PTQDynamicConfig
    inputs = {"model": "torch_model", "data": "dataset", "baseline": "torch_model"}
    optional_inputs = frozenset({"baseline"})
    outputs = {"model": "torch_model_int8"}
    description = "dynamic int8 quantization of Linear/LSTM/GRU weights"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress import DynamicPTQ

        cfg = cast(PTQDynamicConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        quantizer = DynamicPTQ(library_config(cfg, DynamicPTQConfig))
        metrics: dict[str, Any] = save_int8(ctx, data, source, quantizer, quantizer.quantize(source.module))
        fraction = quantizer.quantizable_fraction(source.module)
        metrics["quantizable_param_fraction"] = fraction
        warnings = []
        if fraction < LOW_FRACTION:
            warnings.append(
                f"only {fraction:.1%} of the parameters are in {list(cfg.layers)} layers, the only ones "
                "dynamic quantization converts; use ptq_static or qat for conv nets"
            )
        return StageResult(metrics=metrics, warnings=warnings)
