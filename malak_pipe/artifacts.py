"""Named artifact types: how an artifact is saved, loaded and where it lives on disk.

The engine only knows artifact *names* (strings) so the graph can refuse a wrong wiring
without importing torch. Each name maps to an import string of an :class:`ArtifactType`,
imported the first time an artifact of that type is actually saved or loaded.

An artifact is one file or one directory. Its content hash (sha256 over the file, or over
the sorted relative paths and contents of a directory) is what enters downstream cache keys.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malak_pipe.errors import ArtifactError


@dataclass(frozen=True)
class ArtifactType:
    """How one kind of artifact is written and read.

    ``save(obj, path)`` writes ``obj`` at ``path`` (a file, or a directory when ``is_dir``);
    the engine passes a temporary path and renames it into place afterwards, so savers never
    need to be atomic themselves. ``load(path)`` returns the object and raises
    :class:`ArtifactError` naming the file when it is not what it should be.
    """

    name: str
    suffix: str
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]
    is_dir: bool = False


# name -> "module:attribute" of an ArtifactType. Library modules own their types; the
# engine only needs the names, so nothing heavy is imported for validation.
ARTIFACT_TYPES: dict[str, str] = {
    "json": "malak_pipe.artifact_io:JSON",
    "dataset": "malak_pipe.data.artifact:DATASET",
    "torch_model": "malak_pipe.models.artifact:TORCH_MODEL",
    "torch_model_int8": "malak_pipe.compress.artifact:TORCH_MODEL_INT8",
    "onnx_model": "malak_pipe.deploy.artifact:ONNX_MODEL",
    "onnx_model_int8": "malak_pipe.deploy.artifact:ONNX_MODEL_INT8",
    "drift_reference": "malak_pipe.deploy.artifact:DRIFT_REFERENCE",
    "c_sources": "malak_pipe.mcu.artifact:C_SOURCES",
    "firmware_elf": "malak_pipe.mcu.artifact:FIRMWARE",
}

_loaded: dict[str, ArtifactType] = {}


def known_types() -> list[str]:
    return sorted(ARTIFACT_TYPES)


def get_type(name: str) -> ArtifactType:
    """Import and return the artifact type called ``name``."""
    if name in _loaded:
        return _loaded[name]
    target = ARTIFACT_TYPES.get(name)
    if target is None:
        raise ArtifactError(f"unknown artifact type '{name}'", hint=f"use one of {known_types()}")
    module_name, attr = target.split(":")
    artifact_type = getattr(importlib.import_module(module_name), attr)
    _loaded[name] = artifact_type
    return artifact_type


def sha256_of(path: Path) -> str:
    """Content hash of a file, or of a directory (relative paths and contents, sorted)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(b"\0")
            digest.update(_file_digest(child).encode())
        return digest.hexdigest()
    return _file_digest(path)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
