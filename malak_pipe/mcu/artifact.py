"""Artifact types ``c_sources`` (a codegen directory) and ``firmware_elf`` (a build directory).

Both are directories. Saving copies a directory given as a path; loading checks that the
directory holds what downstream stages read and returns its path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import ArtifactType
from malak_pipe.errors import ArtifactError

SOURCES_FILES = ("model.c", "model.h", "model_data.c", "model_data.h", "plan.json", "graph.json", "graph_params.npz")
FIRMWARE_FILES = ("firmware.elf", "memory.json", "target.json")


def _save_dir(obj: Any, path: Path) -> None:
    source = Path(obj)
    if not source.is_dir():
        raise ArtifactError(f"expected a directory to save, got {obj!r}", path=str(path))
    shutil.copytree(source, path, dirs_exist_ok=True)


def _checked(path: Path, required: tuple[str, ...], kind: str, producer: str) -> Path:
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise ArtifactError(
            f"not a {kind} directory: missing {', '.join(missing)}",
            path=str(path),
            hint=f"wire this input to the output of a {producer} node",
        )
    return path


def _load_sources(path: Path) -> Path:
    return _checked(path, SOURCES_FILES, "c_sources", "codegen")


def _load_firmware(path: Path) -> Path:
    return _checked(path, FIRMWARE_FILES, "firmware_elf", "firmware_build")


C_SOURCES = ArtifactType(name="c_sources", suffix="", save=_save_dir, load=_load_sources, is_dir=True)
FIRMWARE = ArtifactType(name="firmware_elf", suffix="", save=_save_dir, load=_load_firmware, is_dir=True)
