"""firmware_build: compile generated C with the C runtime for a target, check the memory budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from malak_pipe.mcu.configs import BuildOptions
from malak_pipe.mcu.target import TargetConfig
from malak_pipe.stage import ExternalCode, Stage, StageConfig, StageContext, StageResult

REPORTED = ("flash_bytes", "ram_bytes", "arena_bytes", "param_bytes", "code_bytes", "stack_bytes", "macs")
DEPLOY_REPORTED = ("flash_bytes", "ram_bytes", "flash_budget_bytes", "ram_budget_bytes")


class FirmwareBuildConfig(StageConfig, BuildOptions):
    """The target (``${target}``), the fields of :class:`malak_pipe.mcu.configs.BuildOptions`,
    and optionally the board the firmware ships to.

    ``target`` is the board the firmware is built for and the simulator runs (mps2_an500 under
    QEMU). ``deploy_target``, when set (an experiment's defaults list:
    ``- /target@stage.firmware_build.deploy_target: stm32h743``), is the board it is meant
    for: its budget is checked too, before anything is compiled, and the firmware is also
    built for it (``deploy/`` in the output) to report its real flash and RAM.
    """

    target: TargetConfig
    deploy_target: TargetConfig | None = None


class FirmwareBuild(Stage):
    """arm-none-eabi-gcc build of c_sources into firmware.elf plus a memory report."""

    name = "firmware_build"
    version = 2  # deploy_target: a second board's budget and build
    Config = FirmwareBuildConfig
    inputs = {"sources": "c_sources"}
    outputs = {"firmware": "firmware_elf"}
    description = "cross-compile for Cortex-M, memory report, flash/RAM budget check"
    summary = {"flash_bytes": "flash {:bytes}", "ram_bytes": "ram {:bytes}", "deploy_target": "fits {}"}

    @classmethod
    def external_code(cls, cfg: StageConfig) -> ExternalCode:
        """The C runtime and linker scripts compiled into the firmware, and the cross compiler."""
        from malak_pipe.mcu.files import firmware_root

        return ExternalCode(files=(firmware_root(),), tools=("arm-none-eabi-gcc",))

    def run(self, cfg: FirmwareBuildConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.mcu.build import build_firmware, check_plan_budget, read_plan

        sources = ctx.load("sources")
        plan = read_plan(sources)
        check_plan_budget(plan, cfg.target, cfg)  # both boards before anything is compiled
        if cfg.deploy_target is not None:
            check_plan_budget(plan, cfg.deploy_target, cfg, path="stage.firmware_build.deploy_target")
        with ctx.output_path("firmware") as path, ThreadPoolExecutor(max_workers=2) as pool:
            path.mkdir(parents=True, exist_ok=True)
            # the two boards' builds are independent compiler runs: side by side on two cores
            deploy_build = None
            if cfg.deploy_target is not None:
                deploy_build = pool.submit(build_firmware, sources, path / "deploy", cfg.deploy_target, cfg)
            report = build_firmware(sources, path, cfg.target, cfg)
            deploy = None if deploy_build is None else deploy_build.result()
        ctx.log(
            f"flash {report['flash_bytes']} B (params {report['param_bytes']} B, code {report['code_bytes']} B), "
            f"RAM {report['ram_bytes']} B (arena {report['arena_bytes']} B, stack {report['stack_bytes']} B)"
        )
        metrics = {key: report[key] for key in REPORTED}
        if deploy is not None:
            ctx.log(f"fits {deploy['target']}: flash {deploy['flash_bytes']} B, RAM {deploy['ram_bytes']} B")
            metrics["deploy_target"] = deploy["target"]
            metrics.update({f"deploy_{key}": deploy[key] for key in DEPLOY_REPORTED})
        return StageResult(metrics=metrics)
