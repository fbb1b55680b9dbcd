"""Where the C runtime (firmware/) is: next to this package when installed, else the repo's."""

from __future__ import annotations

from pathlib import Path

from malak_pipe.errors import ArtifactError

_MARKER = Path("include") / "mk_kernels.h"


def firmware_root() -> Path:
    """The firmware directory (include/, src/, host/, ld/)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "firmware", here.parents[1] / "firmware"):
        if (candidate / _MARKER).is_file():
            return candidate
    raise ArtifactError(
        "the malak-pipe C runtime (firmware/include/mk_kernels.h) is not installed",
        path=str(here / "firmware"),
        hint="reinstall malak-pipe (pip install -e .) so the firmware/ package data is present",
    )


def include_dir() -> Path:
    return firmware_root() / "include"


def linker_dir() -> Path:
    return firmware_root() / "ld"


def renode_dir() -> Path:
    """The Renode platform files (renode/): next to this package when installed, else the repo's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "renode_files", here.parents[1] / "renode"):
        if (candidate / "stm32h743.repl").is_file():
            return candidate
    raise ArtifactError(
        "the malak-pipe Renode files (renode/stm32h743.repl) are not installed",
        path=str(here / "renode_files"),
        hint="reinstall malak-pipe (pip install -e .) so the renode/ package data is present",
    )
