"""build_model: the one entry point from a ModelConfig to an nn.Module."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from malak_pipe.errors import ConfigError
from malak_pipe.models.config import MODEL_BUILDERS, SHAPE_FIELDS, ModelConfig


def _builder(name: str) -> Callable[[ModelConfig], nn.Module]:
    module_name, attr = MODEL_BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``cfg`` (in train mode, on the CPU or the default device).

    A zoo model needs its shape fields set (``cfg.for_data(...)`` fills those left None).
    """
    unset = [field for field in SHAPE_FIELDS if getattr(cfg, field) is None]
    if unset and cfg.name != "factory":
        raise ConfigError(
            f"model.{unset[0]} is not set: {cfg.name} needs {', '.join(unset)} to be built",
            path=f"model.{unset[0]}",
            hint="set it, or let it follow the data (ModelConfig.for_data(dataset.input_shape, dataset.num_classes))",
        )
    return _builder(cfg.name)(cfg)
