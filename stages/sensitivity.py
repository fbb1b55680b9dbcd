"""The ``sensitivity`` stage: each conv / depthwise / linear layer alone at 4 bits, on val.

One static PTQ calibration (``ptq``: the fields of :class:`malak_pipe.compress.StaticPTQConfig`,
train batches) and, per layer and ``clips`` entry (minmax: round to nearest on the min-max
range; mse: the MSE-optimal per-channel clip), the val top-1 drop against the all-int8 model,
the output KL on the first ``kl_batches`` val batches, the relative weight error and the
firmware weight bytes the layer saves at 4 bits (as the MCU code generator lays them out).
Outputs: ``table`` (JSON: the rows) and ``plot`` (PNG: drop vs bytes saved per layer). Test is
never read.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import StaticPTQConfig
from malak_pipe.compress.precision import SensitivityConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult

from ._compress import library_config


class SensitivityStageConfig(StageConfig, SensitivityConfig):
    """The fields of :class:`malak_pipe.compress.precision.SensitivityConfig` and the PTQ calibration."""

    ptq: StaticPTQConfig = StaticPTQConfig()


def add_weight_bytes(table: dict[str, Any]) -> None:
    """Each row's firmware weight bytes at 8 and 4 bits and their difference (``bytes_saved``)."""
    from malak_pipe.mcu.ops.int4 import firmware_weight_bytes

    for row in table["layers"]:
        shape = tuple(row["weight_shape"])
        row["weight_bytes_int8"] = firmware_weight_bytes(row["kind"], shape, row["groups"], 8)
        row["weight_bytes_int4"] = firmware_weight_bytes(row["kind"], shape, row["groups"], 4)
        row["bytes_saved"] = row["weight_bytes_int8"] - row["weight_bytes_int4"]


class Sensitivity(Stage):
    """Per-layer sensitivity to 4-bit weights: val drop, output KL, bytes saved; table and plot."""

    name = "sensitivity"
    version = 1
    Config = SensitivityStageConfig
    inputs = {"model": "torch_model", "data": "dataset"}
    outputs = {"table": "json", "plot": "sensitivity_plot"}
    description = "each layer alone at 4-bit weights: val drop vs int8, output KL, flash bytes saved"
    summary = {
        "layers_measured": "{} layers",
        "most_sensitive_layer": "worst {}",
        "int8_val_top1": "int8 val {:.2%}",
    }

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress.sensitivity import measure_sensitivity
        from malak_pipe.compress.sensitivity_report import clip_summary, markdown_table
        from malak_pipe.compress.weight_quant import weight_layers

        cfg = cast(SensitivityStageConfig, cfg)
        data, source = ctx.load("data"), ctx.load("model")
        config = library_config(cfg, SensitivityConfig)
        count = len(cfg.layers or weight_layers(source.module)) * len(cfg.clips)
        with ctx.progress(count, "sensitivity") as bar:
            table = measure_sensitivity(source.module, data, cfg.ptq, config, progress=bar)
        add_weight_bytes(table)
        table["fp32_val_top1"] = ctx.input_metrics("model").get("val_top1")
        ctx.save("table", table)
        ctx.save("plot", table)
        ctx.log("\n" + markdown_table(table))
        worst = max(table["layers"], key=lambda row: (row["val_drop_pp"], row["kl"]))
        metrics = {
            "int8_val_top1": table["int8_val_top1"],
            "layers_measured": len({row["layer"] for row in table["layers"]}),
            "most_sensitive_layer": worst["layer"],
            "bytes_saved_all_int4": sum(row["bytes_saved"] for row in table["layers"] if row["clip"] == cfg.clips[0]),
            "layers": table["layers"],
            **clip_summary(table),
        }
        return StageResult(metrics=metrics)
