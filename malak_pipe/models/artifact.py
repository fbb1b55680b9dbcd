"""ModelArtifact and the ``torch_model`` artifact type.

A checkpoint is ``torch.save({"format": 1, "config": ModelConfig dict, "state_dict": ...})``
and is loaded with ``weights_only=True`` (no pickled code runs). Loading rebuilds the model
from its config and then adapts every Conv2d / BatchNorm / Linear to the checkpoint's shapes,
so models whose channels were removed by structured pruning load back as they were saved.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from malak_pipe.artifacts import ArtifactType
from malak_pipe.errors import ArtifactError
from malak_pipe.models.build import build_model
from malak_pipe.models.config import ModelConfig

CHECKPOINT_FORMAT = 1


@dataclass
class ModelArtifact:
    """A float model and the config that builds its architecture."""

    config: ModelConfig
    module: nn.Module


def save_model(artifact: ModelArtifact, path: Path) -> None:
    """Write ``artifact`` as a checkpoint at ``path`` (tensors moved to the CPU).

    A factory model's checkpoint also records the sha256 of the factory's source file: every
    node that rebuilds the model from this checkpoint runs that code, so a change to it must
    change the bytes downstream keys are computed from, even when the weights come out the same.
    """
    state = {name: tensor.detach().cpu() for name, tensor in artifact.module.state_dict().items()}
    checkpoint = {"format": CHECKPOINT_FORMAT, "config": artifact.config.model_dump(), "state_dict": state}
    if artifact.config.name == "factory" and artifact.config.factory:
        checkpoint["factory_source_sha256"] = factory_source_sha256(artifact.config.factory)
    torch.save(checkpoint, path)


def factory_source_sha256(target: str) -> str:
    """sha256 of the source file of the module an import string ``"pkg.mod:callable"`` names."""
    module = importlib.import_module(target.partition(":")[0])
    source = Path(module.__file__) if getattr(module, "__file__", None) else None
    return hashlib.sha256(source.read_bytes()).hexdigest() if source and source.is_file() else "unknown"


def load_model(path: Path) -> ModelArtifact:
    """Read a checkpoint written by :func:`save_model`; the module is returned in eval mode."""
    checkpoint = read_checkpoint(
        path,
        "model",
        {CHECKPOINT_FORMAT: ("config", "state_dict")},
        hint="point the input at a torch_model artifact written by the train stage",
    )
    try:
        config = ModelConfig(**checkpoint["config"])
    except ValidationError as exc:
        raise ArtifactError(f"the model config inside the checkpoint is invalid: {exc}", path=str(path)) from None
    module = build_model(config)
    state_dict = checkpoint["state_dict"]
    adapt_to_state_dict(module, state_dict)
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ArtifactError(
            f"the checkpoint's weights do not fit a {config.name} model: {exc}",
            path=str(path),
            hint="was it saved from a different architecture or a changed factory?",
        ) from None
    return ModelArtifact(config=config, module=module.eval())


def read_checkpoint(path: Path, kind: str, entries: Mapping[int, Sequence[str]], hint: str) -> dict[str, Any]:
    """The dict of a malak-pipe checkpoint, read with ``weights_only=True`` and checked.

    ``entries`` maps each readable format to the entries (dicts) a checkpoint of that format
    must hold. Anything else (not a torch file, another format, a missing entry) is an
    ArtifactError naming ``path``; ``kind`` names the checkpoint and ``hint`` where to point instead.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError...)
        raise ArtifactError(
            f"not a malak-pipe {kind} checkpoint ({type(exc).__name__}: {str(exc)[:200]})", path=str(path), hint=hint
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") not in entries:
        formats = " or ".join(str(number) for number in entries)
        raise ArtifactError(
            f"not a malak-pipe {kind} checkpoint (expected a dict with format {formats})", path=str(path)
        )
    for key in entries[checkpoint["format"]]:
        if not isinstance(checkpoint.get(key), dict):
            raise ArtifactError(f"the {kind} checkpoint lacks its '{key}' entry", path=str(path))
    return checkpoint


def adapt_to_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Resize parameters and buffers of ``module`` to the shapes found in ``state_dict``.

    Conv2d, BatchNorm and Linear layers also get their channel/feature attributes updated
    (a depthwise conv stays depthwise: its groups follow its channel count), so a model
    whose channels were pruned away has the same shapes, and the same forward, after loading.
    Values are left uninitialised: ``load_state_dict`` fills them.
    """
    for prefix, layer in module.named_modules():
        resized = _resize_tensors(layer, prefix, state_dict)
        if resized:
            _update_attributes(layer)


def _resize_tensors(layer: nn.Module, prefix: str, state_dict: dict[str, torch.Tensor]) -> bool:
    resized = False
    dotted = f"{prefix}." if prefix else ""
    for name, param in list(layer.named_parameters(recurse=False)):
        saved = state_dict.get(dotted + name)
        if saved is not None and saved.shape != param.shape:
            new = torch.empty(saved.shape, dtype=param.dtype, device=param.device)
            setattr(layer, name, nn.Parameter(new, requires_grad=param.requires_grad))
            resized = True
    for name, buffer in list(layer.named_buffers(recurse=False)):
        saved = state_dict.get(dotted + name)
        if buffer is not None and saved is not None and saved.shape != buffer.shape:
            layer.register_buffer(name, torch.empty(saved.shape, dtype=buffer.dtype, device=buffer.device))
            resized = True
    return resized


def _update_attributes(layer: nn.Module) -> None:
    if isinstance(layer, nn.modules.conv._ConvNd):
        was_depthwise = layer.groups > 1 and layer.groups == layer.in_channels
        multiplier = layer.out_channels // layer.in_channels if was_depthwise else 1
        out_channels, in_per_group = layer.weight.shape[:2]
        layer.out_channels = out_channels
        if was_depthwise:
            layer.groups = max(1, out_channels // max(1, multiplier))
        layer.in_channels = in_per_group * layer.groups
    elif isinstance(layer, nn.modules.batchnorm._NormBase):
        layer.num_features = layer.weight.shape[0] if layer.weight is not None else layer.running_mean.shape[0]
    elif isinstance(layer, nn.Linear):
        layer.out_features, layer.in_features = layer.weight.shape


TORCH_MODEL = ArtifactType(name="torch_model", suffix=".pt", save=save_model, load=load_model)
