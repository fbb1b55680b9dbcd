"""fit_check: drop a model that cannot fit the target's flash before anything trains.

It passes the dataset through unchanged (same bytes, so the train node downstream keeps the
cache key it has without the check) and fails with ``infeasible`` when the architecture's
weights alone exceed the flash budget (malak_pipe/mcu/fit.py). A search wires it between
data and train, so an impossible candidate costs seconds.
"""

from __future__ import annotations

from typing import cast

from malak_pipe.mcu.fit import FitCheckOptions
from malak_pipe.mcu.target import TargetConfig
from malak_pipe.models.config import ModelConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult


class FitCheckConfig(StageConfig, FitCheckOptions):
    """The architecture (``${model}``), the target (``${target}``) and the bound's options."""

    model: ModelConfig
    target: TargetConfig


class FitCheck(Stage):
    name = "fit_check"
    version = 1
    Config = FitCheckConfig
    inputs = {"data": "dataset"}
    outputs = {"dataset": "dataset"}
    description = "flash lower bound from the architecture's weights vs the target budget, before training"
    summary = {"flash_lower_bound_bytes": "needs >= {:bytes}", "flash_budget_bytes": "budget {:bytes}"}

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.mcu.fit import check_fits, weight_count
        from malak_pipe.models import build_model

        cfg = cast(FitCheckConfig, cfg)
        data = ctx.load("data")
        options = FitCheckOptions(**cfg.model_dump(include=set(FitCheckOptions.model_fields)))
        figures = check_fits(weight_count(build_model(cfg.model)), cfg.target, options)
        ctx.save("dataset", data)
        return StageResult(metrics=figures)
