"""ModelConfig: which architecture to build, for which input and class count.

This module imports no torch, so stage configs can embed a ModelConfig and validate fast.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from malak_pipe.errors import ConfigError

# name -> "module:callable" building an nn.Module from a ModelConfig. Imported lazily by
# build_model; "factory" is the escape hatch for any other nn.Module.
MODEL_BUILDERS: dict[str, str] = {
    "simple_cnn": "malak_pipe.models.simple_cnn:build_simple_cnn",
    "mobilenet_v2": "malak_pipe.models.mobilenet_v2:build_mobilenet_v2",
    "resnet18": "malak_pipe.models.resnet:build_resnet18",
    "resnet50": "malak_pipe.models.resnet:build_resnet50",
    "efficientnet_b0": "malak_pipe.models.efficientnet:build_efficientnet_b0",
    "ds_cnn": "malak_pipe.models.ds_cnn:build_ds_cnn",
    "factory": "malak_pipe.models.factory:build_from_factory",
}


# Zoo models that take 1-D signals (N x C x L); the others take images (N x C x H x W).
SIGNAL_MODELS = frozenset({"ds_cnn"})
SHAPE_FIELDS = ("in_channels", "num_classes", "image_size")


class ModelConfig(BaseModel):
    """An architecture and the input it is built for.

    ``in_channels``, ``num_classes`` and ``image_size`` (the side of square images, or the
    length of 1-D signals) may be None: they then follow the dataset (:meth:`for_data`).
    ``width_mult`` scales every channel count (rounded to a multiple of 8 as MobileNet does;
    1.0 keeps the published widths). ``factory`` is an import string ``"pkg.mod:callable"``
    called with ``kwargs``; it is required exactly when ``name == "factory"``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "simple_cnn"
    in_channels: PositiveInt | None = 1
    num_classes: PositiveInt | None = 10
    image_size: PositiveInt | None = 28
    width_mult: float = Field(default=1.0, gt=0.0)
    factory: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def for_data(self, input_shape: tuple[int, ...], num_classes: int) -> ModelConfig:
        """This config with the shape fields left None taken from the data (``input_shape``:
        (C, H, W) or (C, L)); ``image_size`` only when the sample is square or 1-D."""
        spatial = set(input_shape[1:])
        found = {
            "in_channels": input_shape[0],
            "num_classes": num_classes,
            "image_size": spatial.pop() if len(spatial) == 1 else None,
        }
        update = {field: found[field] for field in SHAPE_FIELDS if getattr(self, field) is None}
        return self.model_copy(update=update) if update else self

    def code_modules(self) -> list[str]:
        """The user module a factory model is built by: its source enters the cache key of
        every node configured with this model (see malak_pipe.stage.UserCode)."""
        if self.name == "factory" and self.factory:
            return [self.factory.partition(":")[0]]
        return []

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in MODEL_BUILDERS:
            raise ValueError(f"unknown model '{name}'; use one of {sorted(MODEL_BUILDERS)}")
        return name

    @model_validator(mode="after")
    def _factory_fields(self) -> ModelConfig:
        if self.name == "factory":
            if not self.factory or ":" not in self.factory:
                raise ValueError("model.name=factory needs model.factory as an import string 'pkg.module:callable'")
        else:
            if self.factory is not None:
                raise ValueError(f"model.factory is only used with name=factory, not name={self.name}")
            if self.kwargs:
                raise ValueError(f"model.kwargs is only used with name=factory, not name={self.name}")
        return self


def check_model_fits_data(model: ModelConfig, input_shape: tuple[int, ...], num_classes: int, path: str) -> None:
    """ConfigError when a zoo model's shape fields disagree with the dataset's.

    Checks that the model takes the data's kind of sample (images or 1-D signals),
    ``in_channels`` and ``num_classes`` (and ``image_size`` for simple_cnn, whose classifier is
    sized for it); ``path`` is where the model config sits (e.g. "model", "student"). Factory
    models are not checked: their shape is the factory's business.
    """
    if model.name == "factory":
        return
    takes_signals = model.name in SIGNAL_MODELS
    if takes_signals != (len(input_shape) == 2):
        kind = "1-D signals (C, L)" if len(input_shape) == 2 else "images (C, H, W)"
        other = "ds_cnn" if len(input_shape) == 2 else "simple_cnn"
        raise ConfigError(
            f"{path}.name is {model.name}, which does not take the dataset's {kind}",
            path=f"{path}.name",
            hint=f"use {path}=ds_cnn for signals or an image model for images (e.g. {other}), or a factory model",
        )
    expected = {"in_channels": input_shape[0], "num_classes": num_classes}
    if model.name == "simple_cnn":
        expected["image_size"] = input_shape[1]
    for field, value in expected.items():
        if getattr(model, field) != value:
            raise ConfigError(
                f"{path}.{field} is {getattr(model, field)} but the dataset has {value}",
                path=f"{path}.{field}",
                hint=f"leave {path}.{field} to follow the data group (${{data...}}) or set it to {value}",
            )
