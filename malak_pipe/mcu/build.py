"""Build the firmware: arm-none-eabi-gcc, the budget check, arm-none-eabi-size and a memory report.

The budget is checked twice: before linking, with what the generated plan already fixes
(parameters in flash; activation arena plus stack in RAM), so a model that cannot fit fails
with the numbers and the amount over; and after linking, with the real section sizes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from malak_pipe.errors import BudgetExceeded, StageFailed, StageSkipped
from malak_pipe.mcu.configs import BuildOptions
from malak_pipe.mcu.files import firmware_root
from malak_pipe.mcu.target import TargetConfig

INSTALL_HINT = "install the Arm GNU toolchain: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
IO_SOURCES = {"semihosting": "src/semihost.c", "mailbox": "src/io_mailbox.c"}


def runtime_sources(target: TargetConfig) -> list[Path]:
    """The runner, startup code and the target's I/O layer."""
    root = firmware_root()
    return [root / "src" / "main.c", root / "src" / "startup_cm7.c", root / IO_SOURCES[target.io]]


FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")
RAM_SECTIONS = (".data", ".bss", ".stack")
IO_SYMBOLS = ("mk_record", "mk_ticks", "mk_total_ticks")
LAYER_KEYS = ("index", "name", "kernel", "macs", "param_bytes", "scratch_bytes")
DEBUG_FLAGS = {"none": (), "lines": ("-g1",), "full": ("-g",)}


def arm_tool(name: str) -> str:
    """Path of an arm-none-eabi tool; StageSkipped with the install hint when absent."""
    found = shutil.which(f"arm-none-eabi-{name}")
    if found is None:
        raise StageSkipped(f"arm-none-eabi-{name} is not on PATH: {INSTALL_HINT}", missing_tool=True)
    return found


def cflags(target: TargetConfig, options: BuildOptions) -> list[str]:
    flags = [f"-mcpu={target.cpu}", "-mthumb", f"-mfloat-abi={target.float_abi}"]
    if target.float_abi != "soft":
        flags.append(f"-mfpu={target.fpu}")
    flags += [f"-{options.opt_level}", *DEBUG_FLAGS[options.debug_info], "-std=c11", "-Wall", "-Wextra"]
    flags += ["-ffunction-sections", "-fdata-sections"]
    flags += [
        "-fno-strict-aliasing",
        f"-DMK_TIMER_{target.timer.upper()}",
        f"-DMK_MAILBOX_BASE={target.mailbox_address}u",
    ]
    flags += list(options.extra_cflags)
    return flags


def _execute(command: list[str], what: str, cwd: Path | None = None) -> tuple[str, str]:
    """Run a tool; (its stdout, its build-log entry). StageFailed with its stderr when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise StageFailed(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return result.stdout, "$ " + " ".join(command) + "\n" + result.stdout + result.stderr + "\n"


def _run(command: list[str], log: Path, what: str, cwd: Path | None = None) -> str:
    stdout, entry = _execute(command, what, cwd)
    with open(log, "a") as handle:
        handle.write(entry)
    return stdout


def _compile_all(command: list[str], sources: list[Path], work: Path) -> list[str]:
    """Compile every source to an object in ``work``, as many at once as there are cores.

    The build log gets the entries in source order, so it is the same whatever finished first.
    """

    def compile_one(source: Path) -> tuple[str, str]:
        obj = work / (source.stem + ".o")
        _, entry = _execute([*command, "-c", str(source), "-o", str(obj)], f"compiling {source.name}", work)
        return str(obj), entry

    with ThreadPoolExecutor(max_workers=max(1, min(len(sources), os.cpu_count() or 1))) as pool:
        compiled = list(pool.map(compile_one, sources))
    with open(work / "build.log", "a") as handle:
        handle.writelines(entry for _, entry in compiled)
    return [obj for obj, _ in compiled]


GENERIC_FIT_HINT = (
    "pick a target with more memory, a narrower model (model.width_mult), prune (prune_structured), "
    "or lower stack_bytes"
)


def check_budget(
    target: TargetConfig,
    flash: int,
    ram: int,
    when: str,
    *,
    detail: str = "",
    hint: str = GENERIC_FIT_HINT,
    path: str = "target",
) -> None:
    """BudgetExceeded (a StageFailed a search records as infeasible) naming the numbers (and
    ``detail``) when flash or RAM exceeds the target's budget."""
    over = []
    if flash > target.flash_bytes:
        over.append(f"flash {flash} B > {target.flash_bytes} B budget ({flash - target.flash_bytes} B over)")
    if ram > target.ram_bytes:
        over.append(f"RAM {ram} B > {target.ram_bytes} B budget ({ram - target.ram_bytes} B over)")
    if over:
        where = f" ({detail})" if detail else ""
        raise BudgetExceeded(
            f"the model does not fit target '{target.name}' {when}: " + "; ".join(over) + where,
            path=path,
            hint=hint,
        )


def width_factor_that_fits(target: TargetConfig, param_bytes: int, arena_bytes: int, stack_bytes: int) -> float:
    """About how much narrower (a factor on model.width_mult) the model must be to fit ``target``.

    Parameters grow about with the square of the width, the activation arena about linearly;
    the code (a few percent of flash) is left out, so the factor is an upper bound.
    """
    factors = [1.0]
    if param_bytes > target.flash_bytes:
        factors.append((target.flash_bytes / param_bytes) ** 0.5)
    if arena_bytes + stack_bytes > target.ram_bytes:
        factors.append(max(target.ram_bytes - stack_bytes, 0) / arena_bytes)
    return min(factors)


def check_plan_budget(plan: dict, target: TargetConfig, options: BuildOptions, path: str = "target") -> None:
    """The budget check before anything is compiled, with what the code generator's plan fixes.

    Flash must hold the parameters, RAM the activation arena plus the reserved stack; a model
    over either fails with the numbers, the amount over and about which width would fit.
    """
    params, arena, stack = plan["param_bytes"], plan["arena"]["arena_bytes"], options.stack_bytes
    factor = width_factor_that_fits(target, params, arena, stack)
    check_budget(
        target,
        params,
        arena + stack,
        "(checked before linking)",
        detail=f"flash holds the parameters: {params} B; RAM holds the arena {arena} B + the stack {stack} B",
        hint=f"a narrower model: model.width_mult at most about {factor:.2f} x the current one (parameters grow "
        "with its square, the activation arena linearly), a pruned one (prune_structured), a smaller "
        "stack_bytes, or a target with more memory",
        path=path,
    )


def compile_and_link(
    sources: list[Path], includes: list[Path], out_dir: Path, target: TargetConfig, options: BuildOptions
) -> Path:
    """Cross-compile C files and link them with the target's script into out_dir/firmware.elf.

    Objects go to a temporary directory; absolute paths are mapped (-ffile-prefix-map) and
    removed from the log and map file, so the same sources give the same bytes.
    """
    gcc = arm_tool("gcc")
    root = firmware_root()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mk-build-") as tmp:
        work = Path(tmp)
        prefixes = {work: "build", root: "firmware", **{p: f"include{i}" for i, p in enumerate(includes)}}
        maps = [f"-ffile-prefix-map={path}={name}" for path, name in prefixes.items()]
        flags = cflags(target, options) + maps + [f"-I{p}" for p in [root / "include", *includes]]
        objects = _compile_all([gcc, *flags], sources, work)
        link = [gcc, *cflags(target, options), "-nostartfiles", "--specs=nano.specs", f"-L{root / 'ld'}"]
        link += ["-T", target.linker_script, f"-Wl,--defsym=__stack_size={options.stack_bytes}", "-Wl,--gc-sections"]
        link += ["-Wl,-Map=firmware.map", *objects, "-o", "firmware.elf"]
        _run(link, work / "build.log", "linking", work)
        for name in ("build.log", "firmware.map"):
            text = (work / name).read_text(errors="replace")
            for path, alias in sorted(prefixes.items(), key=lambda item: -len(str(item[0]))):
                text = text.replace(str(path), alias)
            (out_dir / name).write_text(text)
        shutil.copyfile(work / "firmware.elf", out_dir / "firmware.elf")
    return out_dir / "firmware.elf"


def read_plan(sources: Path) -> dict:
    """The code generator's plan.json of a c_sources directory."""
    return json.loads((sources / "plan.json").read_text())


def build_firmware(sources: Path, out_dir: Path, target: TargetConfig, options: BuildOptions = BuildOptions()) -> dict:
    """Compile and link ``sources`` (a codegen directory) into ``out_dir``/firmware.elf; the memory report."""
    plan = read_plan(sources)
    check_plan_budget(plan, target, options)
    runtime = runtime_sources(target)
    elf = compile_and_link(
        [sources / "model.c", sources / "model_data.c", *runtime], [sources], out_dir, target, options
    )
    log = out_dir / "build.log"
    sections = parse_size_a(_run([arm_tool("size"), "-A", elf.name], log, "arm-none-eabi-size", out_dir))
    symbols = parse_nm(_run([arm_tool("nm"), "-S", "--size-sort", elf.name], log, "arm-none-eabi-nm", out_dir))
    report = memory_report(plan, sections, symbols, target, options)
    (out_dir / "memory.json").write_text(json.dumps(report, indent=1))
    (out_dir / "memory.txt").write_text(format_report(report))
    (out_dir / "target.json").write_text(json.dumps(target.model_dump(), indent=1))
    check_budget(target, report["flash_bytes"], report["ram_bytes"], "(after linking)")
    return report


def build_harness_firmware(out_dir: Path, target: TargetConfig, options: BuildOptions = BuildOptions()) -> Path:
    """The kernel test harness (codegen.harness_source) as firmware; returns the ELF."""
    from malak_pipe.mcu.codegen import harness_source

    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "harness.c"
    source.write_text(harness_source())
    runtime = [path for path in runtime_sources(target) if path.name != "main.c"]
    return compile_and_link([source, *runtime], [], out_dir, target, options)


def parse_size_a(text: str) -> dict[str, int]:
    """Section sizes from ``arm-none-eabi-size -A``."""
    sections = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    return sections


def parse_nm(text: str) -> dict[str, int]:
    """Symbol sizes from ``arm-none-eabi-nm -S``."""
    symbols = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols[parts[3]] = int(parts[1], 16)
    return symbols


def memory_report(
    plan: dict, sections: dict[str, int], symbols: dict[str, int], target: TargetConfig, options: BuildOptions
) -> dict:
    """Flash and RAM split the way X-CUBE-AI reports them, plus MACs per layer."""
    flash = sum(sections.get(s, 0) for s in FLASH_SECTIONS)
    ram = sum(sections.get(s, 0) for s in RAM_SECTIONS)
    code = sections.get(".isr_vector", 0) + sections.get(".text", 0) + sections.get(".ARM.exidx", 0)
    return {
        "target": target.name,
        "flash_bytes": flash,
        "ram_bytes": ram,
        "flash_budget_bytes": target.flash_bytes,
        "ram_budget_bytes": target.ram_bytes,
        "param_bytes": plan["param_bytes"],
        "arena_bytes": plan["arena"]["arena_bytes"],
        "arena_lower_bound_bytes": plan["arena"]["lower_bound_bytes"],
        "code_bytes": code,
        "other_rodata_bytes": sections.get(".rodata", 0) - plan["param_bytes"],
        "data_bytes": sections.get(".data", 0),
        "bss_bytes": sections.get(".bss", 0),
        "stack_bytes": sections.get(".stack", options.stack_bytes),
        "io_buffer_bytes": sum(symbols.get(s, 0) for s in IO_SYMBOLS),
        "macs": plan["macs"],
        "sections": sections,
        "layers": [
            {k: layer.get(k) for k in (*LAYER_KEYS, "weight_bytes", "weight_bits")} for layer in plan["layers"]
        ],
        "blocks": plan.get("blocks", []),
    }


def format_report(report: dict) -> str:
    """The memory report as text."""
    kib = 1024.0
    lines = [
        f"target {report['target']}",
        f"flash  {report['flash_bytes']:>10} B ({report['flash_bytes'] / kib:.1f} KiB of "
        f"{report['flash_budget_bytes'] / kib:.0f} KiB)",
        f"  weights/params {report['param_bytes']:>10} B",
        f"  code           {report['code_bytes']:>10} B",
        f"  other rodata   {report['other_rodata_bytes']:>10} B",
        f"  data (init)    {report['data_bytes']:>10} B",
        f"ram    {report['ram_bytes']:>10} B ({report['ram_bytes'] / kib:.1f} KiB of "
        f"{report['ram_budget_bytes'] / kib:.0f} KiB)",
        f"  activations    {report['arena_bytes']:>10} B (arena; lower bound {report['arena_lower_bound_bytes']} B)",
        f"  io buffers     {report['io_buffer_bytes']:>10} B (runner records; input/output tensors are in the arena)",
        f"  other bss/data {report['bss_bytes'] + report['data_bytes'] - report['arena_bytes']:>10} B",
        f"  stack          {report['stack_bytes']:>10} B (reserved)",
        f"macs   {report['macs']:>10}",
        "",
        f"{'#':>3} {'layer':<40} {'kernel':<9} {'MACs':>10} {'params B':>9} {'scratch B':>9} {'weights B':>9} "
        f"{'bits':>4}",
    ]
    for layer in report["layers"]:
        weights, bits = layer.get("weight_bytes"), layer.get("weight_bits")
        lines.append(
            f"{layer['index']:>3} {layer['name'][:40]:<40} {layer['kernel']:<9} {layer['macs']:>10} "
            f"{layer['param_bytes']:>9} {layer['scratch_bytes']:>9} {'-' if weights is None else weights:>9} "
            f"{'-' if bits is None else bits:>4}"
        )
    return "\n".join(lines + _block_lines(report.get("blocks", []))) + "\n"


def _block_lines(blocks: list[dict]) -> list[str]:
    """Per depthwise block: fused or not, and the arena bytes live while it runs, before and after fusion."""
    if not blocks:
        return []
    lines = ["", f"{'block (depthwise)':<40} {'fused':<5} {'RAM unfused B':>13} {'RAM planned B':>13}"]
    for block in blocks:
        lines.append(
            f"{block['depthwise'][:40]:<40} {'yes' if block['fused'] else 'no':<5} "
            f"{block['ram_before_bytes']:>13} {block['ram_after_bytes']:>13}"
        )
    return lines
