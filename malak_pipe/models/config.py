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
    "factory": "malak_pipe.models.factory:build_from_factory",
}


class ModelConfig(BaseModel):
    """An architecture and the input it is built for.

    ``width_mult`` scales every channel count (rounded to a multiple of 8 as MobileNet does;
    1.0 keeps the published widths). ``factory`` is an import string ``"pkg.mod:callable"``
    called with ``kwargs``; it is required exactly when ``name == "factory"``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "simple_cnn"
    in_channels: PositiveInt = 1
    num_classes: PositiveInt = 10
    image_size: PositiveInt = 28
    width_mult: float = Field(default=1.0, gt=0.0)
    factory: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

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

    Checks ``in_channels`` and ``num_classes`` (and ``image_size`` for simple_cnn, whose
    classifier is sized for it); ``path`` is where the model config sits (e.g. "model",
    "student"). Factory models are not checked: their shape is the factory's business.
    """
    if model.name == "factory":
        return
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
