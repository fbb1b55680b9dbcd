"""Toy stages for engine tests: JSON artifacts only, no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from malak_pipe.engine.registry import register_stage
from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.stage import Stage, StageConfig, StageResult

CALLS: list[str] = []


class SourceConfig(StageConfig):
    value: int = 1


@register_stage
class Source(Stage):
    name = "toy_source"
    Config = SourceConfig
    outputs = {"out": "json"}

    def run(self, cfg, ctx):
        CALLS.append(ctx.node)
        ctx.save("out", {"value": cfg.value})
        return StageResult(metrics={"value": cfg.value})


class AddConfig(StageConfig):
    amount: PositiveInt = 1
    mode: Literal["add", "fail", "crash", "skip_tool"] = "add"


@register_stage
class Add(Stage):
    name = "toy_add"
    Config = AddConfig
    inputs = {"x": "json"}
    outputs = {"out": "json"}

    def run(self, cfg, ctx):
        CALLS.append(ctx.node)
        if cfg.mode == "fail":
            raise StageFailed("the toy failed on purpose", hint="set mode=add")
        if cfg.mode == "crash":
            raise RuntimeError("boom")
        if cfg.mode == "skip_tool":
            raise StageSkipped("toy-tool not found; apt-get install toy-tool", missing_tool=True)
        value = ctx.load("x")["value"] + cfg.amount
        ctx.save("out", {"value": value})
        return StageResult(metrics={"value": value, "upstream_value": ctx.input_metrics("x")["value"]})


@register_stage
class Sink(Stage):
    name = "toy_sink"
    inputs = {"a": "json", "b": ("json", "dataset")}
    optional_inputs = frozenset({"b"})
    outputs = {}

    def run(self, cfg, ctx):
        CALLS.append(ctx.node)
        return StageResult(metrics={"has_b": ctx.has_input("b")})
