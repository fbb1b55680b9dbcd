"""Run firmware in Renode (STM32H743 platform of renode/), when ``renode`` is on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageSkipped
from malak_pipe.mcu import simio
from malak_pipe.mcu.target import TargetConfig

INSTALL_HINT = (
    "install Renode (https://github.com/renode/renode/releases: the renode_*.deb package, or the "
    "portable linux tarball with `renode` on PATH); see renode/README.md"
)


def renode_binary() -> str:
    found = shutil.which("renode")
    if found is None:
        raise StageSkipped(f"renode is not on PATH: {INSTALL_HINT}", missing_tool=True)
    return found


def run_images(
    elf: Path, images: np.ndarray, output_bytes: int, layers: int, *, target: TargetConfig, timeout_s: float
) -> simio.RunOutput:
    renode_binary()
    raise NotImplementedError
