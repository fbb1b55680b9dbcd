"""QuantizedModelArtifact and the ``torch_model_int8`` artifact type.

The file is ``torch.save({"format": 2, "config": ModelConfig dict, "recipe": QuantRecipe dict,
"packed": packed int8 state})`` and is read with ``weights_only=True``: no pickled code runs.
The state is packed by :func:`malak_pipe.compress.packing.pack_state` (one tensor per dtype,
int8 weights as their integer representation, float32 per-channel scales when exact, no
zero points for symmetric weights), which makes the file ~4x smaller than the FP32 model's
rather than ~3.9x, and is unpacked bit-exactly. A state with 4-bit weights (two per byte in the
``nibbles`` pool) is written as format 3, which older readers refuse rather than misread.
Format 1 files (``"state_dict"``: the plain int8 state) still load. Loading builds the float
architecture from the config, resizes it to the recorded float shapes (structurally pruned
models), replays the recipe (fuse, prepare, convert) and loads the int8 state into the result.
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
from malak_pipe.compress.packing import NIBBLES, pack_state, unpack_state
from malak_pipe.compress.recipe import QuantRecipe
from malak_pipe.errors import ArtifactError
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.models.artifact import adapt_to_state_dict, read_checkpoint

INT8_FORMAT = 2
INT4_FORMAT = 3
_STATE_KEY = {1: "state_dict", 2: "packed", 3: "packed"}


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
        _fill_finite(module)
    return module.eval()


def _fill_finite(module: nn.Module) -> None:
    """Small positive values in every float tensor (BN variances included).

    Resized tensors hold uninitialised memory (NaN, inf), which would break the observers that
    see the skeleton's calibration batch; the loaded int8 state overwrites everything anyway.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.empty(tensor.shape).uniform_(0.01, 0.05, generator=generator))


def save_int8(artifact: QuantizedModelArtifact, path: Path) -> None:
    """Write ``artifact`` at ``path`` (format 2: packed state; 3 when it holds 4-bit weights)."""
    packed = pack_state(artifact.module.state_dict())  # keeps _metadata (module versions) for loading
    with backend.quiet_torch_ao():
        torch.save(
            {
                "format": INT4_FORMAT if NIBBLES in packed["pools"] else INT8_FORMAT,
                "config": artifact.config.model_dump(mode="json"),
                "recipe": artifact.recipe.model_dump(mode="json"),
                "packed": packed,
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
    state = _state(checkpoint, path)
    module = backend.rebuild(build_float_skeleton(config, recipe), recipe)
    try:
        backend.load_int8_state(module, state, recipe)
    except RuntimeError as exc:
        raise ArtifactError(
            f"the int8 state does not fit the rebuilt {config.name} model: {str(exc)[:300]}",
            path=str(path),
            hint="was the artifact written by a different malak-pipe version? re-run the quantize node",
        ) from None
    return QuantizedModelArtifact(config=config, recipe=recipe, module=module.eval())


def _state(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """The int8 state of a format 1 (plain) or format 2 (packed) checkpoint."""
    if checkpoint["format"] == 1:
        return checkpoint["state_dict"]
    try:
        with backend.quiet_torch_ao():
            return unpack_state(checkpoint["packed"])
    except (ValueError, RuntimeError) as exc:
        raise ArtifactError(f"the packed int8 state is corrupt: {str(exc)[:300]}", path=str(path)) from None


def _read(path: Path) -> dict[str, Any]:
    with backend.quiet_torch_ao():
        return read_checkpoint(
            path,
            "int8",
            {number: ("config", "recipe", key) for number, key in _STATE_KEY.items()},
            hint="point the input at a torch_model_int8 artifact written by ptq_static, ptq_dynamic or qat",
        )


TORCH_MODEL_INT8 = ArtifactType(name="torch_model_int8", suffix=".pt", save=save_int8, load=load_int8)
