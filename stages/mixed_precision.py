"""The ``mixed_precision`` stage: the layers at 4 bits under a flash budget, then PTQ or QAT.

From the ``sensitivity`` table (val figures only) and the budget (``budget``: the target's
flash, ``flash_bytes``, ``weight_bytes`` or ``average_bits``; the flash budgets predict the
firmware's flash from the measured flash of the int8 firmware wired as ``reference``) the
solver picks the 4-bit layers (exact knapsack on the predicted val drop, greedy on drop per
byte, or a uniform random choice as the control); the FP32 ``model`` is then quantized with
those layers at 4 bits by static PTQ (``ptq``) or a short QAT (``qat``, ``qat_finetune``).

Metrics: the standard ones (val/test top-1, drops vs the FP32 input and ``baseline``), the
drops vs the int8 model wired as ``int8``, the 4-bit layers, predicted drop and flash, the
firmware weight bytes (mixed and int8) and the mean weight bit-width. Output ``selection``
(JSON) records the plan.
"""

from __future__ import annotations

import json
from typing import Any, cast

from malak_pipe.compress.configs import QATConfig, StaticPTQConfig
from malak_pipe.compress.precision import MixedPrecisionConfig
from malak_pipe.mcu.target import TargetConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult
from malak_pipe.training.settings import FitSettings

from ._compress import COMPRESSION_SUMMARY, fit_metrics, library_config, save_int8, smoke_warnings, training_progress


class MixedPrecisionStageConfig(StageConfig, MixedPrecisionConfig):
    """The fields of :class:`malak_pipe.compress.precision.MixedPrecisionConfig`, the target (for
    budget "target") and the quantizers: ``ptq`` for finetune "ptq", ``qat`` and
    ``qat_finetune`` for finetune "qat"."""

    target: TargetConfig
    ptq: StaticPTQConfig = StaticPTQConfig()
    qat: QATConfig = QATConfig()
    qat_finetune: FitSettings = FitSettings(epochs=1, lr=1e-4)


def _int8_flash(ctx: StageContext) -> int | None:
    if not ctx.has_input("reference"):
        return None
    return int(json.loads((ctx.load("reference") / "memory.json").read_text())["flash_bytes"])


def _quantize(cfg: MixedPrecisionStageConfig, ctx: StageContext, source: Any, data: Any, bits: Any) -> tuple:
    """(quantizer, int8 module, extra metrics) of the chosen fine-tune."""
    from malak_pipe.compress import QAT, StaticPTQ

    if cfg.finetune == "ptq":
        quantizer = StaticPTQ(cfg.ptq).with_weight_bits(bits)
        return quantizer, quantizer.quantize(source.module, data), {}
    quantizer = QAT(cfg.qat).with_weight_bits(bits)
    prepared = quantizer.prepare(source.module)
    with training_progress(ctx, data, cfg.qat_finetune, "qat") as bar:
        result = quantizer.train(prepared, data, cfg.qat_finetune, progress=bar)
    return quantizer, quantizer.convert(prepared), fit_metrics(result, cfg.qat_finetune)


def _vs_int8(ctx: StageContext, metrics: dict[str, Any]) -> dict[str, float]:
    if not ctx.has_input("int8"):
        return {}
    int8 = ctx.input_metrics("int8")
    return {
        f"{split}_top1_drop_vs_int8_pp": 100.0 * (int8[f"{split}_top1"] - metrics[f"{split}_top1"])
        for split in ("val", "test")
        if int8.get(f"{split}_top1") is not None and metrics.get(f"{split}_top1") is not None
    }


class MixedPrecision(Stage):
    """Mixed 4/8-bit weights under a budget, chosen from measured per-layer sensitivity."""

    name = "mixed_precision"
    version = 1
    Config = MixedPrecisionStageConfig
    inputs = {
        "model": "torch_model",
        "data": "dataset",
        "sensitivity": "json",
        "reference": "firmware_elf",
        "int8": "torch_model_int8",
        "baseline": "torch_model",
    }
    optional_inputs = frozenset({"reference", "int8", "baseline"})
    outputs = {"model": "torch_model_int8", "selection": "json"}
    description = "per-layer 4/8-bit weights under a flash budget (knapsack on val sensitivity), then PTQ or QAT"
    summary = {**COMPRESSION_SUMMARY, "four_bit_layers": "4-bit {}", "test_top1_drop_vs_int8_pp": "{:+.2f}pp vs int8"}

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress.mixed_precision import plan_bits, weight_figures

        cfg = cast(MixedPrecisionStageConfig, cfg)
        data, source, table = ctx.load("data"), ctx.load("model"), ctx.load("sensitivity")
        sizes = {"int8_flash_bytes": _int8_flash(ctx), "target_flash_bytes": cfg.target.flash_bytes}
        plan = plan_bits(library_config(cfg, MixedPrecisionConfig), table, **sizes)
        quantizer, int8, extra = _quantize(cfg, ctx, source, data, plan.bits)
        metrics: dict[str, Any] = save_int8(ctx, data, source, quantizer, int8)
        figures = weight_figures(table, plan.selection.names)
        metrics.update(_vs_int8(ctx, metrics), **extra, **figures)
        selection = {
            "four_bit_layers": list(plan.selection.names),
            "four_bit_clips": plan.clips,
            "predicted_val_drop_pp": plan.predicted_drop_pp,
            "selection_cost": plan.selection.cost,
            "saving_needed": plan.need,
            "saving_unit": plan.unit,
            "saving_chosen": plan.selection.amount,
            "solver": cfg.solver,
            "solver_exact": plan.selection.exact,
            "budget": cfg.budget,
        }
        if sizes["int8_flash_bytes"] is not None:
            selection["int8_flash_bytes"] = sizes["int8_flash_bytes"]
            saved = figures["weight_bytes_int8"] - figures["weight_bytes"]
            selection["predicted_flash_bytes"] = sizes["int8_flash_bytes"] - saved
        ctx.save("selection", selection)
        metrics.update(selection)
        chosen = ", ".join(plan.selection.names) or "none"
        ctx.log(f"4-bit: {chosen}; predicted val drop {plan.predicted_drop_pp:.3f}pp")
        warnings = smoke_warnings(cfg.qat_finetune if cfg.finetune == "qat" else None)
        return StageResult(metrics=metrics, warnings=warnings)
