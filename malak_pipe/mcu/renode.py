"""Run firmware in Renode (renode/stm32h743.repl) when ``renode`` is on PATH.

The firmware is built with the mailbox I/O layer (firmware/src/io_mailbox.c): this module
writes input.bin into the simulation-only mailbox memory, runs the machine for a bounded
virtual time, and dumps the firmware's output and exit code from the mailbox with a Python
block of the Renode monitor. See renode/README.md (this backend has not been run end to end
where it was written; QEMU is the tested backend).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.mcu import simio
from malak_pipe.mcu.files import renode_dir
from malak_pipe.mcu.target import TargetConfig

INSTALL_HINT = (
    "install Renode (https://github.com/renode/renode/releases: the renode_*.deb package, or the "
    "portable linux tarball with `renode` on PATH); see renode/README.md"
)
DONE = 0x454E4F44
OUTPUT_OFFSET = 0x100 + 0x00800000

_DUMP = """python
\"\"\"
import json
bus = self.Machine.SystemBus if hasattr(self, 'Machine') else emulationManager.CurrentEmulation.Machines[0].SystemBus
base = {base}
n = bus.ReadDoubleWord(base + 4)
data = bus.ReadBytes(base + {out}, n) if n else []
with open(r'{out_file}', 'wb') as f:
    f.write(bytearray(data))
with open(r'{status_file}', 'w') as f:
    json.dump({{'done': bus.ReadDoubleWord(base + 12), 'exit_code': bus.ReadDoubleWord(base + 8)}}, f)
\"\"\"
"""


def renode_binary() -> str:
    found = shutil.which("renode")
    if found is None:
        raise StageSkipped(f"renode is not on PATH: {INSTALL_HINT}", missing_tool=True)
    return found


def script(elf: Path, workdir: Path, input_bytes: int, seconds: float, target: TargetConfig) -> str:
    """The Renode monitor script of one run."""
    base = target.mailbox_address
    lines = [
        'mach create "mk"',
        f"machine LoadPlatformDescription @{renode_dir() / 'stm32h743.repl'}",
        f"cpu PerformanceInMips {target.clock_hz // 1_000_000}",  # one instruction per cycle
        f"sysbus LoadELF @{elf}",
        f"sysbus LoadBinary @{workdir / 'input.bin'} {base + 0x100:#x}",
        f"sysbus WriteDoubleWord {base:#x} {input_bytes}",
        f'emulation RunFor "{seconds:.3f}"',
        _DUMP.format(
            base=base, out=OUTPUT_OFFSET, out_file=workdir / "output.bin", status_file=workdir / "status.json"
        ),
        "quit",
    ]
    return "\n".join(lines) + "\n"


def run_images(
    elf: Path, images: np.ndarray, output_bytes: int, layers: int, *, target: TargetConfig, timeout_s: float
) -> simio.RunOutput:
    """Inference on int8 images (N, H, W, C) in one Renode run."""
    renode = renode_binary()
    if target.io != "mailbox":
        raise StageFailed(
            f"target '{target.name}' uses {target.io} I/O; the Renode backend needs io: mailbox",
            path="target.io",
            hint="build the firmware for target=stm32h743",
        )
    with tempfile.TemporaryDirectory(prefix="mk-renode-") as tmp:
        workdir = Path(tmp)
        simio.write_input(workdir / "input.bin", images, output_bytes)
        # virtual time for the run: generous, the firmware idles (WFI) once done
        seconds = max(1.0, timeout_s * 0.5)
        (workdir / "run.resc").write_text(script(elf, workdir, (workdir / "input.bin").stat().st_size, seconds, target))
        command = [renode, "--disable-xwt", "--console", "--plain", "-e", f"include @{workdir / 'run.resc'}"]
        try:
            result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise StageFailed(f"Renode did not finish within {timeout_s:.0f} s; it was stopped") from None
        status_file = workdir / "status.json"
        if not status_file.exists():
            raise StageFailed(f"Renode wrote no results (exit {result.returncode}):\n{result.stdout[-2000:]}")
        status = json.loads(status_file.read_text())
        if status["done"] != DONE:
            raise StageFailed(f"the firmware did not finish within {seconds:.0f} s of virtual time in Renode")
        if status["exit_code"] != 0:
            raise StageFailed(f"the firmware exited with code {status['exit_code']} in Renode")
        return simio.read_output(workdir / "output.bin", len(images), output_bytes, layers)
