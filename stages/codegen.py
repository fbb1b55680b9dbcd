"""codegen: lower an int8 QDQ ONNX model to integer C (model.c, model_data.c) and an arena plan."""

from __future__ import annotations

from typing import cast

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.stage import ExternalCode, Stage, StageConfig, StageContext, StageResult


class CodegenConfig(StageConfig, CodegenOptions):
    """The fields of :class:`malak_pipe.mcu.codegen_options.CodegenOptions` (fuse_pool,
    host_check_images, seed, softmax), validated as a stage config."""


class Codegen(Stage):
    """int8 QDQ ONNX -> integer graph (golden reference) -> C sources with a static arena."""

    name = "codegen"
    version = 2  # plan.json records why each kernel was chosen
    Config = CodegenConfig
    inputs = {"model": "onnx_model_int8"}
    outputs = {"sources": "c_sources"}
    description = "int8 ONNX (QDQ) to specialized C kernels calls, constants and arena plan"
    summary = {"arena_bytes": "arena {:bytes}", "layers": "{} kernel calls", "host_bit_exact_rate": "host {:.0%} exact"}

    @classmethod
    def external_code(cls, cfg: StageConfig) -> ExternalCode:
        """The C runtime the host check compiles the generated code with, and the host compiler."""
        from malak_pipe.mcu.files import firmware_root

        return ExternalCode(files=(firmware_root(),), tools=("cc",))

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.mcu.codegen import generate
        from malak_pipe.mcu.lower import lower_onnx
        from malak_pipe.mcu.selfcheck import host_check

        cfg = cast(CodegenConfig, cfg)
        graph = lower_onnx(ctx.load("model"), host_softmax=cfg.softmax == "host")
        warnings: list[str] = []
        with ctx.output_path("sources") as path:
            path.mkdir(parents=True, exist_ok=True)
            generated = generate(graph, path, cfg)
            check = host_check(graph, path, cfg.host_check_images, cfg.seed) if cfg.host_check_images else None
        if check is None and cfg.host_check_images:
            warnings.append("no host C compiler: the generated C was not checked against the golden reference")
        metrics = {
            "macs": generated.macs,
            "param_bytes": generated.param_bytes,
            "arena_bytes": generated.arena.size,
            "arena_lower_bound_bytes": generated.arena.lower_bound,
            "layers": len(generated.steps),
            "kernels": [step.kernel for step in generated.steps],
        }
        if check is not None:
            metrics["host_bit_exact_rate"] = check
        ctx.log(f"{len(generated.steps)} kernel calls, {generated.macs} MACs, arena {generated.arena.size} B")
        return StageResult(metrics=metrics, warnings=warnings)
