"""QuantizedModelArtifact and the ``torch_model_int8`` artifact type.

The file is ``torch.save({"format": 1, "config": ModelConfig dict, "recipe": QuantRecipe dict,
"state_dict": int8 state})`` and is read with ``weights_only=True``: no pickled code runs.
Loading builds the float architecture from the config, resizes it to the recorded float
shapes (structurally pruned models), replays the recipe (fuse, prepare, convert) and loads
the int8 state into the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from malak_pipe.artifacts import ArtifactType
from malak_pipe.compress import _quant_backend as backend
from malak_pipe.compress.recipe import QuantRecipe
from malak_pipe.errors import ArtifactError
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.models.artifact import adapt_to_state_dict

INT8_FORMAT = 1


@dataclass
class QuantizedModelArtifact:
    """An int8 model, the float architecture it came from and the recipe that made it."""

    config: ModelConfig
    recipe: QuantRecipe
    module: nn.Module

    def quantized_layers(self) -> list[dict[str, Any]]:
        """Per-layer int8 scales and zero points (see ``_quant_backend.quantized_layers``)."""
        return backend.quantized_layers(self.module)


def float_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor in a float model's state (recorded so pruned models rebuild)."""
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def build_float_skeleton(config: ModelConfig, recipe: QuantRecipe) -> nn.Module:
    """The float model of ``config`` resized to ``recipe.float_shapes`` (values meaningless)."""
    module = build_model(config)
    if recipe.float_shapes:
        adapt_to_state_dict(module, {name: torch.empty(shape) for name, shape in recipe.float_shapes.items()})
    return module.eval()


def save_int8(artifact: QuantizedModelArtifact, path: Path) -> None:
    """Write ``artifact`` at ``path``."""
    state = artifact.module.state_dict()  # keeps _metadata (module versions) for loading
    with backend.quiet_torch_ao():
        torch.save(
            {
                "format": INT8_FORMAT,
                "config": artifact.config.model_dump(mode="json"),
                "recipe": artifact.recipe.model_dump(mode="json"),
                "state_dict": state,
            },
            path,
        )


def load_int8(path: Path) -> QuantizedModelArtifact:
    """Read a file written by :func:`save_int8`; the module is returned in eval mode."""
    checkpoint = _read(path)
    try:
        config = ModelConfig(**checkpoint["config"])
        recipe = QuantRecipe(**checkpoint["recipe"])
    except ValidationError as exc:
        raise ArtifactError(
            f"the config or recipe inside the int8 checkpoint is invalid: {exc}", path=str(path)
        ) from None
    module = backend.rebuild(build_float_skeleton(config, recipe), recipe)
    try:
        backend.load_int8_state(module, checkpoint["state_dict"], recipe)
    except RuntimeError as exc:
        raise ArtifactError(
            f"the int8 state does not fit the rebuilt {config.name} model: {str(exc)[:300]}",
            path=str(path),
            hint="was the artifact written by a different malak-pipe version? re-run the quantize node",
        ) from None
    return QuantizedModelArtifact(config=config, recipe=recipe, module=module.eval())


def _read(path: Path) -> dict[str, Any]:
    try:
        with backend.quiet_torch_ao():
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError...)
        raise ArtifactError(
            f"not a malak-pipe int8 checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
            path=str(path),
            hint="point the input at a torch_model_int8 artifact written by ptq_static, ptq_dynamic or qat",
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != INT8_FORMAT:
        raise ArtifactError(
            f"not a malak-pipe int8 checkpoint (expected a dict with format={INT8_FORMAT})", path=str(path)
        )
    for key in ("config", "recipe", "state_dict"):
        if not isinstance(checkpoint.get(key), dict):
            raise ArtifactError(f"the int8 checkpoint lacks its '{key}' entry", path=str(path))
    return checkpoint


TORCH_MODEL_INT8 = ArtifactType(name="torch_model_int8", suffix=".pt", save=save_int8, load=load_int8)
