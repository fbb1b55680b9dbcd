"""TargetConfig: an MCU board or simulator model (conf/target/*.yaml, placed at ``target``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt


class TargetConfig(BaseModel):
    """The core, the memories the firmware may use (the budget), the linker script and timer.

    ``flash_bytes`` and ``ram_bytes`` are the budget checked before linking (RAM = .data +
    .bss + stack). ``linker_script`` names a file of firmware/ld. ``timer`` selects what the
    per-layer counters read: the CMSDK APB timer (MPS2; one tick = 40 instructions under QEMU
    -icount shift=0), the DWT cycle counter, or nothing. ``io``: how the runner reads
    input.bin and writes output.bin: semihosting (QEMU, a debugger on a board) or a memory
    mailbox at ``mailbox_address`` that the simulator fills and reads (Renode).

    The clock and the timer are facts of one board, so they have no default: every target
    YAML states them (and, to be read on its own, every other field too).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    cpu: str = "cortex-m7"
    fpu: str = "fpv5-d16"
    float_abi: Literal["hard", "softfp", "soft"] = "hard"
    linker_script: str
    flash_bytes: PositiveInt
    ram_bytes: PositiveInt
    clock_hz: PositiveInt
    timer: Literal["cmsdk", "dwt", "none"]
    instructions_per_tick: PositiveInt
    io: Literal["semihosting", "mailbox"] = "semihosting"
    mailbox_address: int = 0x70000000
    qemu_machine: str | None = None
    renode_script: str | None = None
