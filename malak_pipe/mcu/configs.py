"""The config objects of the firmware build and the simulator run, each default written once.

:func:`malak_pipe.mcu.build.build_firmware` takes :class:`BuildOptions` and
:func:`malak_pipe.mcu.simulate.evaluate_firmware` takes :class:`SimSettings`; the
firmware_build and sim_run stage configs subclass them, and conf/stage/<name>/default.yaml
shows the same defaults (tests/config/test_stage_defaults.py holds them equal). The board
itself is a :class:`malak_pipe.mcu.target.TargetConfig` (conf/target/*.yaml).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from malak_pipe.compress.configs import CompressionConfig

OptLevel = Literal["O0", "O1", "O2", "O3", "Os", "Ofast"]


class McuConfig(CompressionConfig):
    """Base of the MCU configs: frozen, strict, versioned, JSON round-trip (inherited as is)."""


DebugInfo = Literal["none", "lines", "full"]


class BuildOptions(McuConfig):
    """Compiler settings of a firmware build: ``-<opt_level>``, the reserved stack, extra flags,
    and the debug information kept in the ELF.

    The stack is part of the RAM budget checked before linking; the runner reports how much of
    it an inference used. ``debug_info`` never changes what is loaded on the target (flash,
    RAM, instructions): ``lines`` (-g1, line tables: fault addresses map to source lines) costs
    little compile time, ``full`` (-g, variables for a gdb session) about doubles it for a
    model of many layers, ``none`` keeps nothing.
    """

    opt_level: OptLevel = "O3"
    stack_bytes: int = Field(default=2048, ge=256)
    extra_cflags: tuple[str, ...] = ()
    debug_info: DebugInfo = "lines"


class SimSettings(McuConfig):
    """How firmware runs on a simulator: the backend, exact instruction counting, batching, time limits.

    ``icount``: exact instruction counting under QEMU (-icount shift=0). ``batch_images`` images
    go through one simulator launch; a launch gets ``timeout_s`` + ``timeout_per_image_s`` per
    image before it is stopped.
    """

    backend: Literal["qemu", "renode"] = "qemu"
    icount: bool = True
    batch_images: PositiveInt = 2000
    timeout_s: float = Field(default=60.0, gt=0)
    timeout_per_image_s: float = Field(default=0.5, gt=0)
