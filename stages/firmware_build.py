"""firmware_build: compile generated C with the C runtime for a target, check the memory budget."""

from __future__ import annotations

from malak_pipe.mcu.configs import BuildOptions
from malak_pipe.mcu.target import TargetConfig
from malak_pipe.stage import ExternalCode, Stage, StageConfig, StageContext, StageResult

REPORTED = ("flash_bytes", "ram_bytes", "arena_bytes", "param_bytes", "code_bytes", "stack_bytes", "macs")


class FirmwareBuildConfig(StageConfig, BuildOptions):
    """The target (``${target}``) and the fields of :class:`malak_pipe.mcu.configs.BuildOptions`."""

    target: TargetConfig


class FirmwareBuild(Stage):
    """arm-none-eabi-gcc build of c_sources into firmware.elf plus a memory report."""

    name = "firmware_build"
    version = 1
    Config = FirmwareBuildConfig
    inputs = {"sources": "c_sources"}
    outputs = {"firmware": "firmware_elf"}
    description = "cross-compile for Cortex-M, memory report, flash/RAM budget check"
    summary = {"flash_bytes": "flash {:bytes}", "ram_bytes": "ram {:bytes}"}

    @classmethod
    def external_code(cls, cfg: StageConfig) -> ExternalCode:
        """The C runtime and linker scripts compiled into the firmware, and the cross compiler."""
        from malak_pipe.mcu.files import firmware_root

        return ExternalCode(files=(firmware_root(),), tools=("arm-none-eabi-gcc",))

    def run(self, cfg: FirmwareBuildConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.mcu.build import build_firmware

        sources = ctx.load("sources")
        with ctx.output_path("firmware") as path:
            path.mkdir(parents=True, exist_ok=True)
            report = build_firmware(sources, path, cfg.target, cfg)
        ctx.log(
            f"flash {report['flash_bytes']} B (params {report['param_bytes']} B, code {report['code_bytes']} B), "
            f"RAM {report['ram_bytes']} B (arena {report['arena_bytes']} B, stack {report['stack_bytes']} B)"
        )
        return StageResult(metrics={key: report[key] for key in REPORTED})
