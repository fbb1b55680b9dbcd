"""Run firmware in qemu-system-arm (semihosting I/O, exact instruction counts with -icount)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.mcu import simio

INSTALL_HINT = "install QEMU: apt-get install qemu-system-arm"
DEFAULT_MACHINE = "mps2-an500"
"""The machine when none is given: qemu_machine of conf/target/mps2_an500.yaml (the stages pass the target's)."""
EXIT_CODES = {
    2: "the firmware could not open input.bin/output.bin through semihosting",
    3: "input.bin does not match the model compiled into the firmware (input/output size)",
    4: "short read of input.bin",
    5: "short write of output.bin",
    6: "the kernel harness ran out of its memory pool",
    7: "a kernel wrote past its output or scratch buffer (kernel harness guard bytes)",
    99: "the firmware faulted (HardFault/MemManage/BusFault/UsageFault)",
}


def qemu_binary() -> str:
    found = shutil.which("qemu-system-arm")
    if found is None:
        raise StageSkipped(f"qemu-system-arm is not on PATH: {INSTALL_HINT}", missing_tool=True)
    return found


def qemu_command(elf: Path, machine: str = DEFAULT_MACHINE, icount: bool = True) -> list[str]:
    command = [qemu_binary(), "-M", machine, "-nographic", "-monitor", "none", "-serial", "null"]
    command += ["-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if icount:
        command += ["-icount", "shift=0,align=off,sleep=off"]
    return command


def _wait(process: subprocess.Popen, timeout_s: float, watch: Path, on_progress: Callable[[int], None] | None) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise StageFailed(
                f"the firmware did not finish within {timeout_s:.0f} s (hung or too slow); QEMU was stopped",
                hint="raise timeout_s, or check the firmware (a fault loop, a wrong linker script)",
            )
        if on_progress is not None and watch.exists():
            on_progress(watch.stat().st_size)
        time.sleep(0.2)


def run_firmware(
    elf: Path,
    prepare: Callable[[Path], None],
    *,
    machine: str = DEFAULT_MACHINE,
    icount: bool = True,
    timeout_s: float = 120.0,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Path, str]:
    """Run ``elf`` in a new temp dir after ``prepare(dir)`` wrote its input files; (workdir, console).

    The caller removes the directory. A non-zero exit raises StageFailed with its meaning.
    """
    workdir = Path(tempfile.mkdtemp(prefix="mk-qemu-"))
    prepare(workdir)
    console = workdir / "console.txt"
    with open(console, "w") as log:
        process = subprocess.Popen(
            qemu_command(elf, machine, icount), cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
        _wait(process, timeout_s, workdir / "output.bin", on_progress)
    text = console.read_text(errors="replace")
    if process.returncode != 0:
        meaning = EXIT_CODES.get(process.returncode, "unexpected exit")
        shutil.rmtree(workdir, ignore_errors=True)
        raise StageFailed(f"QEMU exited with {process.returncode}: {meaning}\n{text[-2000:]}", path=str(elf))
    return workdir, text


def run_images(
    elf: Path,
    images: np.ndarray,
    output_bytes: int,
    layers: int,
    *,
    machine: str = DEFAULT_MACHINE,
    icount: bool = True,
    timeout_s: float = 120.0,
    on_progress: Callable[[int], None] | None = None,
) -> simio.RunOutput:
    """Inference on int8 images (N, H, W, C) in one QEMU launch; ``on_progress(images done)``."""
    record = simio.record_bytes(output_bytes)
    progress = None if on_progress is None else (lambda size: on_progress(min(len(images), size // record)))
    workdir, _ = run_firmware(
        elf,
        lambda d: simio.write_input(d / "input.bin", images, output_bytes),
        machine=machine,
        icount=icount,
        timeout_s=timeout_s,
        on_progress=progress,
    )
    try:
        return simio.read_output(workdir / "output.bin", len(images), output_bytes, layers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def calibrate(
    elf: Path, iterations: int, *, machine: str = DEFAULT_MACHINE, timeout_s: float = 60.0
) -> tuple[int, int]:
    """(instructions executed by the calibration loop, timer ticks measured around it)."""
    workdir, _ = run_firmware(
        elf, lambda d: simio.write_calibration(d / "input.bin", iterations), machine=machine, timeout_s=timeout_s
    )
    try:
        n, ticks = simio.read_calibration(workdir / "output.bin")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 2 * n, ticks


def run_cases(elf: Path, cases_bin: bytes, *, machine: str = DEFAULT_MACHINE, timeout_s: float = 60.0) -> bytes:
    """Run the kernel harness firmware on ``cases.bin``; the bytes of ``out.bin``."""
    workdir, _ = run_firmware(
        elf, lambda d: (d / "cases.bin").write_bytes(cases_bin), machine=machine, icount=False, timeout_s=timeout_s
    )
    try:
        return (workdir / "out.bin").read_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
