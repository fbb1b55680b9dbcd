"""Named artifact types: how an artifact is saved, loaded and where it lives on disk.

Artifact types register like stages do: through the ``malak_pipe.artifacts`` entry-point
group (name -> ``module:attribute`` of an :class:`ArtifactType`), or in-process with
:func:`register_artifact_type`. The engine only needs the *names* to check the wiring of a
pipeline, so nothing heavy is imported for validation; a type's module is imported the first
time an artifact of that type is saved or loaded. A third-party package adds its own::

    [project.entry-points."malak_pipe.artifacts"]
    tflite_model = "my_pkg.artifacts:TFLITE_MODEL"

An artifact is one file or one directory. Its content hash (sha256 over the file, or over
the sorted relative paths and contents of a directory) is what enters downstream cache keys.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from malak_pipe.errors import ArtifactError

GROUP = "malak_pipe.artifacts"


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


def _save_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"not a readable JSON file: {exc}", path=str(path)) from None


JSON = ArtifactType(name="json", suffix=".json", save=_save_json, load=_load_json)
"""The one type the engine itself provides: a JSON document (reports, tables)."""

_registered: dict[str, ArtifactType] = {}
_loaded: dict[str, ArtifactType] = {}


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def register_artifact_type(artifact_type: ArtifactType) -> ArtifactType:
    """Register a type in this process (for notebooks and tests); returns it."""
    _registered[artifact_type.name] = artifact_type
    return artifact_type


def known_types() -> list[str]:
    """Every registered type name (entry points and in-process registrations)."""
    return sorted(set(_entry_points()) | set(_registered))


def is_known(name: str) -> bool:
    """Whether ``name`` is a registered type, without importing its module."""
    return name in _registered or name in _entry_points()


def get_type(name: str) -> ArtifactType:
    """Import and return the artifact type called ``name``."""
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    target = _entry_points().get(name)
    if target is None:
        raise ArtifactError(
            f"unknown artifact type '{name}'",
            hint=f"use one of {known_types()} (packages register types in the '{GROUP}' entry-point group)",
        )
    module_name, attr = target.split(":")
    artifact_type = getattr(importlib.import_module(module_name), attr)
    if not isinstance(artifact_type, ArtifactType) or artifact_type.name != name:
        raise ArtifactError(f"entry point '{name}' = '{target}' is not an ArtifactType named '{name}'")
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
