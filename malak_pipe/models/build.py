"""build_model: the one entry point from a ModelConfig to an nn.Module."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from malak_pipe.models.config import MODEL_BUILDERS, ModelConfig


def _builder(name: str) -> Callable[[ModelConfig], nn.Module]:
    module_name, attr = MODEL_BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``cfg`` (in train mode, on the CPU or the default device)."""
    return _builder(cfg.name)(cfg)
