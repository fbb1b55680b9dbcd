"""The model zoo: configs, builders, the torch_model artifact and size metrics.

``ModelConfig`` imports no torch; everything else is imported on first use, so stage configs
can embed a ModelConfig without loading torch::

    from malak_pipe.models import ModelConfig, build_model
    module = build_model(ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28))
"""

from __future__ import annotations

import importlib
from typing import Any

from malak_pipe.models.config import MODEL_BUILDERS, ModelConfig, check_model_fits_data

_LAZY: dict[str, str] = {
    "build_model": "malak_pipe.models.build",
    "ModelArtifact": "malak_pipe.models.artifact",
    "TORCH_MODEL": "malak_pipe.models.artifact",
    "save_model": "malak_pipe.models.artifact",
    "load_model": "malak_pipe.models.artifact",
    "count_parameters": "malak_pipe.models.metrics",
    "count_macs": "malak_pipe.models.metrics",
    "serialized_bytes": "malak_pipe.models.metrics",
    "model_metrics": "malak_pipe.models.metrics",
    "fusion_groups": "malak_pipe.models.fusion",
    "ResidualAdd": "malak_pipe.models.layers",
    "Multiply": "malak_pipe.models.layers",
}

__all__ = ["MODEL_BUILDERS", "ModelConfig", "check_model_fits_data", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'malak_pipe.models' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
