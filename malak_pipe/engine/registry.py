"""The stage registry: names from the ``malak_pipe.stages`` entry-point group, loaded lazily.

Third parties add stages by declaring an entry point in their own distribution::

    [project.entry-points."malak_pipe.stages"]
    my_stage = "my_pkg.stages:MyStage"
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from malak_pipe.errors import ConfigError
from malak_pipe.stage import Stage

GROUP = "malak_pipe.stages"


_registered: dict[str, type[Stage]] = {}


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def stage_names() -> list[str]:
    return sorted(set(_entry_points()) | set(_registered))


def register_stage(stage: type[Stage]) -> type[Stage]:
    """Register a stage class in this process (for notebooks and tests); usable as a decorator."""
    _registered[stage.name] = stage
    return stage


def get_stage(name: str, *, path: str | None = None) -> type[Stage]:
    """The stage class registered as ``name``; a clear error when there is none."""
    if name in _registered:
        return _registered[name]
    return _load_entry_point(name, path)


@cache
def _load_entry_point(name: str, path: str | None) -> type[Stage]:
    target = _entry_points().get(name)
    if target is None:
        raise ConfigError(
            f"unknown stage '{name}'",
            path=path,
            hint=f"use one of: {', '.join(stage_names())} "
            f"(third-party stages register in the '{GROUP}' entry-point group)",
        )
    module_name, attr = target.split(":")
    stage = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(stage, type) and issubclass(stage, Stage)):
        raise ConfigError(f"entry point '{name}' = '{target}' is not a Stage subclass", path=path)
    return stage
